#!/bin/sh
# today: the facts a daily plan starts from. Cheap and read-only, like every sensor.
# Its reading changes at most four times a day on purpose: every change of a reading
# wakes the root agent, and every wake is a paid model turn.
echo "date: $(date '+%Y-%m-%d') ($(date '+%A'), week $(date '+%G-W%V'))"
hour=$(date '+%H')
h=${hour#0}
if [ "$h" -lt 6 ]; then part="night (00:00-05:59"
elif [ "$h" -lt 12 ]; then part="morning (06:00-11:59"
elif [ "$h" -lt 18 ]; then part="afternoon (12:00-17:59"
else part="evening (18:00-23:59"
fi
echo "time: $part $(date '+%Z'))"
case "$(date '+%u')" in
  6|7) echo "workday: no (weekend)" ;;
  *) echo "workday: yes" ;;
esac
echo "host: $(uname -n), up since $(uptime -s 2>/dev/null || echo unknown)"
