"""The world as the root agent sees it: gathered, rendered, waited on, asked over the socket."""
