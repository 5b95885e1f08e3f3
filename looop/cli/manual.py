"""`looop --help`: the whole operating contract, so that the installed program documents itself."""

from __future__ import annotations

MANUAL = """\
looop - a tiny, portable control plane for agent-driven work.

looop senses the world, runs a fleet of worker agents, and carries messages
between the workers and you. It never calls an LLM and never decides. The
judgment lives in a ROOT AGENT: a claude or pi session that you start
yourself and point at looop. looop is the plumbing; the root agent is the
brain; all memory is plain files.

ROLES
  pulse       Started by `looop up`: a detached, single-instance process.
              Every beat (config `interval`, default 60s) it wipes and re-runs
              every sensors/*.sh, in parallel, into snapshots/. That is all.
  root agent  A claude/pi session YOU run. It loops on `looop _ wait --json`,
              decides ONE move, and makes it with a `looop _ ...` verb.
  workers     Agent sessions looop runs in a pseudo-terminal for hands-on
              work. When one needs a decision it `ask`s and blocks.
  data dir    The memory: PLAYBOOK, goals, journal, asks - all files.

HOW TO RUN IT
  1. looop up        start the pulse (it prints its pid and returns)
  2. In another terminal start your agent yourself, e.g. `claude` or `pi`,
     and tell it: "observe looop: read `looop --help`, then loop on
     `looop _ wait --json` and act on what it returns."
  3. looop down      stop the pulse and every live worker
  `looop status` fits one terminal screen: the pulse, what needs a decision
  (asks with their ids, urgent first; blocked and stalled workers), one line
  per worker (id, state, age, spend, last screen line), one line for the
  rest (goals, sensors failing or stale, claims, spend, notifications);
  longer lists end in "+N more". `--watch` redraws it as the world changes
  (it moves no `_ wait` cursor; Ctrl-C ends it); `--json` prints what
  `_ state --json` does; `_ state` is the full text. `looop logs ID [-f]`
  prints or follows a worker's output as its terminal showed it;
  `looop tail` follows the journal.
  `looop up --foreground` runs attached (for a systemd/launchd unit); its
  log is up.log in the data dir. Shell completion of ids:
  eval "$(_LOOOP_COMPLETE=bash_source looop)"   (zsh_source, fish_source)
  The human talks to the root agent in chat. looop never starts the root
  agent and has nothing to attach to.

ROOT AGENT CONTRACT (for the agent session; "you" below is that agent)
  Your loop:  while true; do state=$(looop _ wait --json --timeout 100); act; done
  * `looop _ wait --json` blocks until there is something to judge that
    you have not seen, then prints the state; its `news` lists what is new:
      {v, world_hash, news[], snapshots{name: reading}, asks[{id, worker,
       prompt, reference, options, urgent}], workers[{id, state, alive}],
       goals[id], journal_tail[], claims, spend, notifications, problems}
    `v` is the state's version (1): a key changed or gone raises it.
    What wakes it, once per event: a new ask, or one escalated (urgent); a
    worker that ended (except by `_ worker kill`: you know), turned `idle`
    (it finished a turn without ending itself), turned `blocked`, or
    `stalled`; a sensor reading that changed; a goal added or archived; a
    notice from looop (a budget threshold, workers found dead).
    Not: a worker starting or running again, its screen or output, spend
    below a threshold, your own answers and notices, the journal.
  * Your tool kills a long command (Claude Code's Bash: 2 min by default,
    10 at most; pi: per call): keep --timeout S under that limit (exit 124
    means nothing new: just wait again). A wait that is killed or times
    out loses nothing: the next one returns the news.
  * Your cursor (.last-tick-hash) moves only when a wait prints. After a
    restart (your context was reset), `looop _ wait --json --all` returns
    at once with everything pending. Others read without moving yours:
    `--since HASH` (news after a world_hash they were shown; moves no
    cursor) or `--cursor NAME` (a cursor of their own); `looop status
    --watch` moves none.
    `looop _ state --json` reads the same thing once, without blocking.
  * Decide the SINGLE most important move; make it with one verb; wait again.
  * Asks first: a worker blocked on an ask (state `asking`) makes no
    progress until you answer. Decide it yourself when
    the playbook lets you; otherwise ask the human in chat, then
    `looop _ answer ASK_ID "answer"`.
  * A worker that is `idle` but not done, or going the wrong way, needs
    direction: tell it (`looop _ worker tell ID "..."`), do not kill it
    (killing loses its context; `_ worker resume` restarts it with it).
  * Read PLAYBOOK.md and goals/ at the start; they are your standing orders.

VERBS (the root agent's; each mutating one is journaled)
  looop _ state [--json]                 read the state once
  looop _ wait [--json] [--timeout S]    block until there is news for you
        [--all | --since HASH | --cursor NAME]   (see above)
  looop _ answer ASK_ID TEXT             resolve a worker's pending ask
  looop _ goal write ID [BODY]           create or replace goals/ID.md
  looop _ goal archive ID                move it to goals/archive/
  looop _ sensor write NAME [SCRIPT]     create or replace sensors/NAME.sh
  looop _ sensor remove NAME             delete a sensor
  looop _ playbook write [BODY]          replace PLAYBOOK.md
  looop _ run CMD... [--reason T]        ONE reversible shell command
  looop _ worker start ID PROMPT... [--cwd DIR | --worktree REPO]
        [--env KEY=VALUE]...             start a worker (needs `looop up`)
  looop _ worker tell ID MESSAGE...      type MESSAGE (or stdin) into a live
                                         worker's agent and submit it
  looop _ worker kill ID [--reason T]    end a worker and all it started
  looop _ worker resume ID [PROMPT...]   restart an ended worker, same sandbox
                                         and conversation (config `resume`)
  `_ worker start --queue` waits for a slot when `max_workers` run (`_ worker kill`
  takes it off the queue).
  looop _ notify MESSAGE...              tell the human (journaled, hook)
  Bodies: give them inline, or omit them and pipe them on stdin (heredoc).
  Most mutating verbs take --reason T, which goes into the journal.

INVARIANTS (never weaken these)
  * Nothing irreversible (merge, deploy, delete, publish, pay, send in the
    human's name) without the human's explicit yes in chat. `_ run` is ONE
    reversible command; anything irreversible goes to a worker that asks.
  * Single writer: change PLAYBOOK, goals and sensors only through the verbs,
    never by editing the files (the pulse reads them every beat).
  * Ask, don't guess: without information or authority, ask the human.

WORKERS
  `_ worker start` runs the config's `interactive` agent in a pty (50x200,
  its own process group) in --cwd DIR (default: where you run the verb), or
  in a new git worktree of REPO on branch looop/ID under sessions/ID/ (run
  under `box` when box is on PATH). Its prompt is the worker contract, then
  PROMPT; both are saved in prompts/ID.md. The state shows each worker as:
    starting  spawned, nothing printed yet
    running   printing (or its screen says it is busy)
    idle      quiet for `idle_after` seconds: done with its turn, or stuck
    asking    blocked on an ask: answer it
    blocked   quiet at a dialog of its agent that looop does not know:
              `blocked_by` holds its screen: tell the human, or end it
    stalled   busy (or never started) with no output and no verb call for
              `stall_after`: look at it (an idle worker is not stalled)
    exited    ended on its own (exit_code says how)
    killed    ended by you, by itself (`_ kill`), or by `looop down`
    dead      killed by a signal nobody sent, or found gone
  Its environment is `looop up`'s (set API keys, PATH, HOME there), plus
  the config's `env` and --env (journaled by name, never the value).
  Ending it ends every process it started, also those that left its group
  (found by their inherited LOOOP_RUN_ID); `_ worker kill` returns when
  all are gone.
  An ended worker never restarts by itself; its undelivered asks are
  cancelled (an answer it never took is void) and its claims released.
  `_ worker tell` types a message as a human at its terminal would: the
  text (a bracketed paste for claude and pi: newlines stay in one
  message; other control characters and over 16 KiB are refused), then
  the profile's submit key; it returns once that went. A busy agent takes
  it after its current step. claude and pi (`raw_mode`) are typed into
  once their TUI took the terminal (up to 10s at start); one at a dialog,
  before the text or the submit key, is not told or its text not submitted
  (exit 5: the keys would answer the dialog; the journal says which).
  Claude Code drops what is typed in its first second: tell a claude
  worker once it is `running` or `idle`.
  `cat sessions/ID/screen.txt` shows its screen now;
  sessions/ID/transcript.log holds all it printed (rotated at 4 MiB).
  An ended worker's ID may be started again; the ID `pulse` is reserved.
  If `up` was killed, the next `up` marks its workers dead (ending any that
  outlived it: `orphaned`), cancels their asks, releases their claims and
  notifies you. Ended sessions are reaped after `session_ttl`.

WORKER CONTRACT (injected at the top of every worker's prompt)
  It spells looop's absolute path and the worker's id literally (LOOOP and
  ID below), so an agent with permission dialogs runs them without one:
    LOOOP _ ask ID --prompt "..." [--ref PATH_OR_URL] [--options a,b]
  blocks until answered; its whole output (stdout and stderr) is the answer
  and it exits 0; it exits 8 if the ask was cancelled.
  With --timeout S the ask has a deadline: then it takes --default A, or
  is escalated to the human (urgent) and the call exits 124.
  If a tool kills the wait, running the same ask again re-attaches to it
  (only within the same run: a restarted worker's ask is a new one).
  Workers also run:
    LOOOP _ claim ID RESOURCE [--ttl S] [--wait]
    LOOOP _ unclaim ID RESOURCE                  release it
    LOOOP _ cost ID AMOUNT [--unit usd|tokens]
    LOOOP _ kill ID            end itself (returns once its agent is gone)
  Scripts may spell them "$LOOOP_BIN" _ ask "$LOOOP_SESSION_ID" ...
  A worker writes only to claims/ (through the verbs), reports/ (its
  deliverables for the human) and its own sandbox (a git worktree, or `box`
  when installed). A claim held by another session fails with exit 6 and
  names the holder. It says that the root agent may type messages into
  the worker's session (`_ worker tell`), as a human at its terminal.

AGENT PROFILES (config `interactive`: a profile's name, or a plain command)
  claude  claude --settings {settings_file} --session-id {session_uuid}
            --append-system-prompt {contract} {task}
          resume: the same with --resume {session_uuid}. The settings file
          (sessions/ID/agent-settings.json) allows `Bash(LOOOP _:*)` and
          makes `LOOOP _ dialog ID` Claude Code's PermissionRequest hook:
          each permission request becomes an ask (yes / always / no) and
          the answer goes back to Claude Code. Its folder-trust dialog, and
          a permission dialog the hook did not answer, are read off the
          screen and become asks too; the answer is typed into the pty.
          The settings pin permissions.defaultMode to "default" (newer
          releases default to "auto") and give its Bash tool an hour.
  pi      pi --session {session_dir}/pi-{session_uuid}.jsonl
            --append-system-prompt {contract_file} {task}
          resume: the same command (the session file continues).
  A plain command (a string split like a shell would, or an argv list)
  runs any other agent; if its program is claude or pi it keeps that
  profile's dialogs and screen rules. Config `profiles` overrides parts
  of a profile or adds one: {"claude": {"command": [...], "resume": [...],
  "settings": {...}, "dialogs": [{"name", "pattern", "question", "keys":
  {ANSWER: KEYS}, "hooked": BOOL}], "blocked_markers": [RE],
  "busy_markers": [TEXT], "screen_skip": [RE], "submit": KEYS,
  "bracketed_paste": BOOL, "raw_mode": BOOL}} (see the README). A
  dialog's ask is withdrawn when the dialog leaves the screen. A worker quiet at a dialog looop does not know
  (blocked_markers on its screen) turns `blocked`, with the dialog's text
  in `blocked_by`. Placeholders, replaced inside arguments (never via a
  shell): {prompt} {prompt_file}: contract+task; {contract}
  {contract_file}: the contract; {task}: the task alone; {session_uuid};
  {session_dir}; {settings_file}. With none of {prompt} {prompt_file}
  {task}, the whole prompt is the last argument.

DATA DIR  ${XDG_STATE_HOME:-~/.local/state}/looop/, or $LOOOP_DATA_DIR (mode 0700)
  config.json        runner wiring (or $LOOOP_CONFIG); seeded when absent:
                       interactive   the agent profile (claude, pi, or
                                     one of `profiles`), or a command
                                     (default claude when on PATH, else
                                     pi; see AGENT PROFILES)
                       profiles      overrides of profiles' parts
                       interval      pulse cadence (60s)
                       session_ttl   keep ended sessions this long (3d)
                       sensor_timeout  per sensor (min(interval, 30s))
                       notify        argv run with each notice appended:
                                     ["notify-send", "looop"], or a
                                     webhook: ["curl", "-fsS", "-m", "10",
                                     "-o", "/dev/null", URL,
                                     "--data-binary"]
                       idle_after    quiet time before `idle` (30s)
                       stall_after   quiet time before `stalled` (15m)
                       kill_grace    SIGTERM to SIGKILL when ending (5s)
                       env           {"KEY": "value"} for every worker
                       max_workers   workers at once (10)
                       ask_deadline  escalate asks unanswered this long
                                     (1h; null: never)
                       claim_ttl     leases taken without --ttl expire
                                     after this (null: never)
                       budget        {"worker": {"usd": 2}, "fleet":
                                     {"usd": 20}}: notices at 80 %; at
                                     100 % a worker is stopped, no new
                                     worker starts past the fleet's
                       resume        command that resumes a worker's
                                     agent (default: the profile's)
                       max_restarts, restart_period   restart intensity of
                                     the supervisor (5 in 60s); past it
                                     `up` stops and exits 1
                     durations: seconds, or 90s / 15m / 12h / 3d,
                                at most 3650d (10 years)
  PLAYBOOK.md        standing orders          }
  goals/ID.md        goals (archive/ kept)    } durable memory
  journal.md         one line per move        }
  sensors/NAME.sh    sensors, one reading each}
  asks/ answers/     the asks store: workers' asks, the answers
  snapshots/         the latest reading of each sensor
  prompts/ID.md      each worker's full prompt
  reports/           worker deliverables for the human (kept)
  claims/            leases on shared resources
  sessions/ID/       a worker: state.json, transcript.log, screen.txt,
                     agent-settings.json (claude's),
                     cost.jsonl, contract.md, worktree/; sessions/pulse/
                     is the `up` process (reaped session_ttl after end)
  notifications.jsonl  notices for the human
  .lock .up.pid .last-tick-hash .store.lock   scratch
  The data dir, the config and each sensor must be owned by you and not
  writable by group or others, or looop refuses them (the data dir: exit 10;
  the config: exit 3; a sensor is not run and its reading says why). looop
  never writes through a symbolic link below the data dir (exit 10).
  A fresh data dir is seeded once from files inside this program: a starter
  PLAYBOOK (whose first priority is to interview you and rewrite it),
  goals/setup.md, goals/playbook-daily.md and sensors/today.sh.

ENVIRONMENT
  LOOOP_DATA_DIR   the data dir          LOOOP_CONFIG   the config file
  LOOOP_BIN, LOOOP_SESSION_ID            set by looop inside each worker
                                         (with LOOOP_RUN_ID, LOOOP_DATA_DIR
                                         and TERM)
  XDG_STATE_HOME   base of the default data dir
  LOOOP_WATCH=poll see file changes by listing the watched directories every
                   0.2 s, not by inotify (as off Linux; for NFS, say)

EXIT CODES
  0 ok  1 error  2 bad input  3 bad config  4 not found  5 conflict
  6 claim held by another  7 looop is not up  8 ask cancelled
  9 corrupt file  10 storage error  124 timed out  130 interrupted
  Arguments, stdin and LOOOP_* values must be UTF-8 text without NUL bytes
  (paths too): anything else is refused with 2 before anything happens.
  A verb that needs `up` exits 7 when nothing listens, and 1 naming why when
  the process is there but silent (stopped, wedged) or hung up; `_ state`,
  `_ wait` and `_ ask` then go on from the files. One request (a worker
  prompt) carries at most 64 MiB.
"""
