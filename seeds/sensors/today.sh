#!/bin/sh
# today: the facts a daily plan starts from. Cheap and read-only, like every sensor.
# Its reading changes at most once an hour on purpose: every change of a reading
# changes the world hash and wakes the root agent.
echo "date: $(date '+%Y-%m-%d') ($(date '+%A'), week $(date '+%G-W%V'))"
hour=$(date '+%H')
h=${hour#0}
if [ "$h" -lt 6 ]; then part=night
elif [ "$h" -lt 12 ]; then part=morning
elif [ "$h" -lt 18 ]; then part=afternoon
else part=evening
fi
echo "time: between ${hour}:00 and ${hour}:59 $(date '+%Z') ($part)"
case "$(date '+%u')" in
  6|7) echo "workday: no (weekend)" ;;
  *) echo "workday: yes" ;;
esac
echo "host: $(uname -n), up since $(uptime -s 2>/dev/null || echo unknown)"
