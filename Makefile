# The single binary: dist/looop (see packaging/binary.sh).
.PHONY: binary
binary:
	sh packaging/binary.sh
