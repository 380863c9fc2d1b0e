//! A client engine and an exit engine joined by K strands on a virtual millisecond clock, no
//! sockets: each strand is an outgoing queue per end (bounded, drained by the "circuit" at a
//! fixed rate unless stalled) and a [`Wire`] of the splitter's harness (delay, jitter, loss,
//! duplication, death). Each end has an app that writes its bytes and reads what arrives
//! (unless paused), and an event inbox that the engine takes from only while it wants events.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use braid_splitter::StrandId;
use braid_splitter::harness::{Link, Wire};
use bytes::Bytes;

use crate::braid::engine::{Action, BraidEngine, StrandEnd, StrandInput, StrandQueues};
use crate::braid::{Braid, BraidReport, BraidSettings, Role};
use crate::msg::EndReason;

pub(super) const CLIENT: usize = 0;
pub(super) const EXIT: usize = 1;
/// Messages a strand's outgoing queue holds (like the circuit queue).
pub(super) const CAP: usize = 64;
/// The largest `Data` body.
pub(super) const MAX_DATA: usize = 4000;
/// How long after a strand dies both ends hear of it.
const DETECT_MS: u64 = 5;

/// What a strand queue carries.
#[derive(Debug, Clone)]
pub(super) enum Msg {
    Data(Bytes),
    End(EndReason),
}

#[derive(Debug, Default)]
pub(super) struct Queue {
    msgs: VecDeque<Msg>,
    closed: bool,
    /// From this time on (ms) the circuit takes nothing from the queue, and it refuses
    /// every message.
    pub stalled_from: Option<u64>,
}

#[derive(Debug)]
enum Inbound {
    Up(StrandId),
    Fragment(StrandId, Bytes),
    Down(StrandId, StrandEnd),
}

/// One end: the engine, its queues, its app and its supply's view.
pub(super) struct Side {
    pub engine: BraidEngine,
    pub queues: BTreeMap<StrandId, Queue>,
    inbox: VecDeque<(u64, Inbound)>,
    app_in: Vec<u8>,
    app_pos: usize,
    app_eof: bool,
    pub app_out: Vec<u8>,
    pub app_closed: bool,
    /// The app reads nothing before this time (ms).
    pub paused_until: u64,
    pub report: Option<BraidReport>,
    pub finished_at: Option<u64>,
    /// `Lost` actions: (strand, live).
    pub lost: Vec<(StrandId, usize)>,
    pub answered: u32,
    /// What the supply says of strands to come; `None` for the exit.
    pub to_come: Option<usize>,
    /// Most bytes waiting for the app at once.
    pub max_output: usize,
    /// Most events waiting in the inbox at once.
    pub max_inbox: usize,
    pub refused: Vec<StrandId>,
}

struct View<'a> {
    now: u64,
    queues: &'a BTreeMap<StrandId, Queue>,
    to_come: Option<usize>,
    inbox_empty: bool,
}

impl Queue {
    /// Messages waiting in it.
    pub(super) fn len(&self) -> usize {
        self.msgs.len()
    }
}

impl StrandQueues for View<'_> {
    fn has_room(&self, strand: StrandId) -> bool {
        has_room(self.queues, strand, self.now)
    }
    fn strands_to_come(&self) -> Option<usize> {
        self.inbox_empty.then_some(self.to_come).flatten()
    }
}

fn has_room(queues: &BTreeMap<StrandId, Queue>, strand: StrandId, now: u64) -> bool {
    queues
        .get(&strand)
        .is_some_and(|q| !q.closed && q.msgs.len() < CAP && q.stalled_from.is_none_or(|t| now < t))
}

/// The two ends and the strands between them.
pub(super) struct Pair {
    pub now: u64,
    t0: Instant,
    pub sides: [Side; 2],
    pub wire: Wire<(usize, Msg)>,
    /// Messages each circuit takes from its queue per ms.
    pub rate: usize,
    /// `End`s on their way (at, to side, strand, reason): reliable and after the strand's data.
    ends: Vec<(u64, usize, StrandId, EndReason)>,
    /// Strands to kill (at, strand).
    pub kills: Vec<(u64, StrandId)>,
    /// The client's supply builds a replacement this long after a loss (`None`: never).
    pub replace_after: Option<u64>,
    /// When the supply's replacements come up.
    ups: Vec<u64>,
    template: Link,
    /// Chance that a queue with room still refuses a transmit (a race with another sender).
    pub refuse: f64,
}

impl Pair {
    /// K strands of `link`, the client uploading `up` and the exit's target sending `down`.
    pub(super) fn new(
        k: u32,
        link: Link,
        seed: u64,
        up: Vec<u8>,
        down: Vec<u8>,
        client: &BraidSettings,
        exit: &BraidSettings,
    ) -> Self {
        let t0 = Instant::now();
        let secret = [42u8; 32];
        let side = |settings: &BraidSettings, role, app_in| {
            let braid = Braid::new(settings, &secret, role, MAX_DATA).unwrap();
            Side {
                engine: BraidEngine::new(braid, settings, t0),
                queues: BTreeMap::new(),
                inbox: VecDeque::new(),
                app_in,
                app_pos: 0,
                app_eof: false,
                app_out: Vec::new(),
                app_closed: false,
                paused_until: 0,
                report: None,
                finished_at: None,
                lost: Vec::new(),
                answered: 0,
                to_come: match role {
                    Role::Client => Some(0),
                    Role::Exit => None,
                },
                max_output: 0,
                max_inbox: 0,
                refused: Vec::new(),
            }
        };
        let mut pair = Pair {
            now: 0,
            t0,
            sides: [side(client, Role::Client, up), side(exit, Role::Exit, down)],
            wire: Wire::new(Vec::new(), seed),
            rate: 2,
            ends: Vec::new(),
            kills: Vec::new(),
            replace_after: None,
            ups: Vec::new(),
            template: link,
            refuse: 0.0,
        };
        for _ in 0..k {
            pair.add_strand();
        }
        // The strands queued before the start are taken before the first read.
        for side in 0..2 {
            pair.take_events(side);
        }
        pair
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    /// A new strand on both ends (its `Up` waits in their inboxes).
    pub(super) fn add_strand(&mut self) -> StrandId {
        let id = StrandId(self.wire.links.len() as u32);
        self.wire.links.push(self.template);
        for side in &mut self.sides {
            side.queues.insert(id, Queue::default());
            side.inbox.push_back((0, Inbound::Up(id)));
        }
        id
    }

    /// Runs until both ends finished or `deadline` (ms); whether both finished.
    pub(super) fn run(&mut self, deadline: u64) -> bool {
        while self.now <= deadline {
            self.step();
            if self.sides.iter().all(|s| s.report.is_some()) {
                return true;
            }
            self.now += 1;
        }
        false
    }

    fn step(&mut self) {
        let now = self.now;
        for (at, strand) in std::mem::take(&mut self.kills) {
            if at > now {
                self.kills.push((at, strand));
                continue;
            }
            self.wire.links[strand.0 as usize].dies_at = Some(now);
            self.wire.cut(strand);
            for side in &mut self.sides {
                if let Some(q) = side.queues.get_mut(&strand) {
                    q.closed = true;
                    q.msgs.clear();
                }
                side.inbox
                    .push_back((now + DETECT_MS, Inbound::Down(strand, StrandEnd::Lost)));
            }
        }
        for at in std::mem::take(&mut self.ups) {
            if at > now {
                self.ups.push(at);
                continue;
            }
            self.add_strand();
            if let Some(n) = self.sides[CLIENT].to_come.as_mut() {
                *n = n.saturating_sub(1);
            }
        }
        for p in self.wire.due(now) {
            let (to, msg) = p.payload;
            if let Msg::Data(bytes) = msg {
                self.sides[to]
                    .inbox
                    .push_back((now, Inbound::Fragment(p.strand, bytes)));
            }
        }
        for (at, to, strand, reason) in std::mem::take(&mut self.ends) {
            if at > now {
                self.ends.push((at, to, strand, reason));
                continue;
            }
            let end = StrandEnd::from(Some(reason));
            self.sides[to]
                .inbox
                .push_back((now, Inbound::Down(strand, end)));
        }
        for side in 0..2 {
            if self.sides[side].report.is_some() {
                continue;
            }
            self.take_events(side);
            self.app(side);
            let t = self.at(now);
            if self.sides[side]
                .engine
                .poll_timeout()
                .is_some_and(|d| d <= t)
            {
                self.sides[side].engine.handle_timeout(t);
            }
            self.poll(side);
        }
        self.drain();
    }

    fn take_events(&mut self, side: usize) {
        let t = self.at(self.now);
        let s = &mut self.sides[side];
        s.max_inbox = s.max_inbox.max(s.inbox.len());
        while s.engine.wants_events() {
            let Some((at, _)) = s.inbox.front() else {
                break;
            };
            if *at > self.now {
                break;
            }
            let Some((_, event)) = s.inbox.pop_front() else {
                break;
            };
            match event {
                Inbound::Up(strand) => {
                    if s.engine
                        .handle_event(t, StrandInput::Up { strand })
                        .is_err()
                    {
                        s.refused.push(strand);
                    }
                }
                Inbound::Fragment(strand, bytes) => {
                    let input = StrandInput::Fragment {
                        strand,
                        bytes: &bytes,
                    };
                    s.engine.handle_event(t, input).unwrap();
                }
                Inbound::Down(strand, end) => {
                    s.engine
                        .handle_event(t, StrandInput::Down { strand, end })
                        .unwrap();
                }
            }
        }
    }

    fn app(&mut self, side: usize) {
        let t = self.at(self.now);
        let now = self.now;
        let s = &mut self.sides[side];
        s.max_output = s.max_output.max(s.engine.app_output().len());
        if now >= s.paused_until && !s.engine.app_output().is_empty() {
            let out = s.engine.app_output();
            s.app_out.extend_from_slice(out);
            let n = out.len();
            s.engine.consume_app_output(n);
        }
        let room = s.engine.read_size(64 * 1024);
        if room == 0 || s.app_eof {
            return;
        }
        if s.app_pos < s.app_in.len() {
            let end = (s.app_pos + room).min(s.app_in.len());
            s.engine.handle_app_data(t, &s.app_in[s.app_pos..end]);
            s.app_pos = end;
        } else {
            s.app_eof = true;
            s.engine.handle_app_eof(t);
        }
    }

    /// The app writes four times, then one round of polls runs (and no more).
    pub(super) fn one_round(&mut self, side: usize) {
        for _ in 0..4 {
            self.app(side);
        }
        let t = self.at(self.now);
        loop {
            let s = &mut self.sides[side];
            let view = View {
                now: self.now,
                queues: &s.queues,
                to_come: s.to_come,
                inbox_empty: s.inbox.is_empty(),
            };
            let Some(action) = s.engine.poll_action(t, &view) else {
                break;
            };
            self.act(side, action);
        }
    }

    /// Rounds of polls, as the driver runs them: another round while the engine waits on a
    /// strand that has room (the driver's reservation would be ready at once).
    fn poll(&mut self, side: usize) {
        let t = self.at(self.now);
        for _ in 0..1000 {
            loop {
                let s = &mut self.sides[side];
                let view = View {
                    now: self.now,
                    queues: &s.queues,
                    to_come: s.to_come,
                    inbox_empty: s.inbox.is_empty(),
                };
                let Some(action) = s.engine.poll_action(t, &view) else {
                    break;
                };
                self.act(side, action);
            }
            let s = &self.sides[side];
            if s.report.is_some() {
                return;
            }
            let ready = s.engine.blocked_on().into_iter().flatten();
            if !ready
                .into_iter()
                .any(|strand| has_room(&s.queues, strand, self.now))
            {
                return;
            }
        }
        panic!("the engine keeps asking for rounds");
    }

    fn act(&mut self, side: usize, action: Action) {
        let t = self.at(self.now);
        let refuse = self.refuse > 0.0 && self.wire.dice.chance(self.refuse);
        let s = &mut self.sides[side];
        match action {
            Action::Transmit(tx) => {
                assert!(
                    s.engine.is_live(tx.strand),
                    "a transmit on a strand that is not live"
                );
                if refuse || !has_room(&s.queues, tx.strand, self.now) {
                    return s.engine.transmit_blocked(t, tx);
                }
                if let Some(q) = s.queues.get_mut(&tx.strand) {
                    q.msgs.push_back(Msg::Data(tx.data));
                }
            }
            Action::Lost { strand, live } => {
                s.lost.push((strand, live));
                if side == CLIENT
                    && let Some(after) = self.replace_after
                {
                    self.ups.push(self.now + after);
                    if let Some(n) = s.to_come.as_mut() {
                        *n += 1;
                    }
                }
            }
            Action::Answered => s.answered += 1,
            Action::CloseApp => s.app_closed = true,
            Action::End { strand, reason } => {
                if let Some(q) = s.queues.get_mut(&strand)
                    && !q.closed
                {
                    q.msgs.push_back(Msg::End(reason));
                }
            }
            Action::Finished(report) => {
                s.report = Some(report);
                s.finished_at = Some(self.now);
            }
        }
    }

    /// The circuits take messages from their queues.
    fn drain(&mut self) {
        for (from, side) in self.sides.iter_mut().enumerate() {
            for (strand, q) in side.queues.iter_mut() {
                if q.stalled_from.is_some_and(|t| self.now >= t) {
                    continue;
                }
                for _ in 0..self.rate {
                    let Some(msg) = q.msgs.pop_front() else { break };
                    let link = self.wire.links[strand.0 as usize];
                    match msg {
                        Msg::End(reason) => {
                            let at = self.now + link.delay + link.jitter + 1;
                            self.ends.push((at, 1 - from, *strand, reason));
                        }
                        data => self.wire.carry(self.now, *strand, (1 - from, data)),
                    }
                }
            }
        }
    }

    pub(super) fn report(&self, side: usize) -> &BraidReport {
        self.sides[side].report.as_ref().unwrap()
    }
}
