//! Position weights: how much of each relay class's bandwidth path selection spends at each
//! hop position, after Tor's dir-spec ("Computing Bandwidth Weights", consensus method 10 and
//! later), so that the scarce kind of relay is kept for the position only it can fill.
//!
//! Relays fall in four classes by their flags: `G` guard-flagged only, `E` exit-flagged only,
//! `D` both, `M` neither; `G`, `E`, `D`, `M` also name the classes' total bandwidths and
//! `T = G + E + D + M`. A class is *scarce* when its total is under `T / 3`. The weights
//! (`Wgg` = weight of a `G` relay in the guard position, `Wmd` = of a `D` relay in the middle,
//! ...) are fractions of [`WEIGHT_SCALE`]; a relay's weight at a position is its bandwidth times
//! its class's weight there. Every case of the dir-spec is implemented:
//!
//! - 1, neither scarce: `Wgd = 0`, exit bandwidth shared with the middle position.
//! - 2a, both scarce and `R + D < S` (`R` the scarcer of `E`, `G`; `S` the other): `Wgg = Wee =
//!   1`, nothing of `G`, `E` or `D` in the middle, `D` wholly to the scarcer position.
//! - 2b, both scarce, `R + D >= S`: `D` split so the middle gets its share (`Wme·E = Wmd·D`),
//!   or, when those weights fall outside `[0, 1]`, split between guard and exit only.
//! - 3a, one scarce (`S`) and `S + D < T / 3`: everything of `S` and `D` stays in `S`'s
//!   position. With scarce exits this is `Wee = Wed = 1` and `Wgd = Wmd = Wme = 0`: exits are
//!   never guards or middles.
//! - 3b, one scarce, `S + D >= T / 3`: `D` shared so each position carries `T / 3`.
//!
//! Positions a class is not weighted for in the dir-spec: an `E` relay is never a guard
//! (weight 0), an `M` relay is never a guard (the guard position needs the Guard flag), a `G` or
//! `M` relay that an exit policy nevertheless lets exit gets `Weg = Wed` and `Wem = Wee`, and
//! `Wmm = 1`. Weights that the formulas put outside `[0, 1]` are clamped, and a weight whose
//! formula divides by an empty class (total 0) is 0 (its complement 1): no relay of that class
//! has bandwidth to weigh. When every relay has bandwidth 0 (`T = 0`) all weights are 1.
//!
//! This module only computes numbers; [`super::select_path`] uses them. It does not decide who
//! gets which flag.

use super::Candidate;

/// The denominator of every weight (Tor's `bwweightscale`): a weight of `WEIGHT_SCALE` keeps all
/// of a relay's bandwidth at that position, 0 rules the relay out there.
pub const WEIGHT_SCALE: u32 = 10_000;

/// A hop's position in a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Position {
    /// The first hop (the guard).
    Guard,
    /// Any hop between the guard and the exit.
    Middle,
    /// The last hop.
    Exit,
}

/// A relay's class by its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Guard flag only (`G`).
    Guard,
    /// Exit flag only (`E`).
    Exit,
    /// Both flags (`D`).
    GuardExit,
    /// Neither flag (`M`).
    Plain,
}

impl Class {
    /// The class of a relay with these flags.
    pub fn of(guard: bool, exit: bool) -> Self {
        match (guard, exit) {
            (true, false) => Class::Guard,
            (false, true) => Class::Exit,
            (true, true) => Class::GuardExit,
            (false, false) => Class::Plain,
        }
    }
}

/// The classes' total bandwidths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassTotals {
    /// `G`: guard-flagged, not exit-flagged.
    pub g: u128,
    /// `E`: exit-flagged, not guard-flagged.
    pub e: u128,
    /// `D`: both flags.
    pub d: u128,
    /// `M`: neither flag.
    pub m: u128,
}

impl ClassTotals {
    /// The totals over `candidates` (each counted once per entry).
    pub fn of(candidates: &[&Candidate]) -> Self {
        let mut t = ClassTotals::default();
        for c in candidates {
            let bw = u128::from(c.bandwidth);
            match Class::of(c.guard, c.exit) {
                Class::Guard => t.g += bw,
                Class::Exit => t.e += bw,
                Class::GuardExit => t.d += bw,
                Class::Plain => t.m += bw,
            }
        }
        t
    }

    /// `T`, the sum of the four.
    pub fn total(&self) -> u128 {
        self.g + self.e + self.d + self.m
    }
}

/// Which of the dir-spec's cases the weights come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightCase {
    /// Every relay has bandwidth 0: all weights 1.
    NoBandwidth,
    /// Case 1: neither exits nor guards scarce.
    Plenty,
    /// Case 2a: both scarce, `R + D < S`.
    BothScarceSmallD,
    /// Case 2b: both scarce, `R + D >= S`.
    BothScarce,
    /// Case 3a with scarce guards.
    GuardsScarceSmallD,
    /// Case 3b with scarce guards.
    GuardsScarce,
    /// Case 3a with scarce exits: exits are never guards or middles.
    ExitsScarceSmallD,
    /// Case 3b with scarce exits.
    ExitsScarce,
}

/// The position weights, each in `0..=WEIGHT_SCALE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PositionWeights {
    /// Which case produced them.
    pub case: WeightCase,
    /// `G` relays as guard.
    pub wgg: u32,
    /// `D` relays as guard.
    pub wgd: u32,
    /// `G` relays as middle.
    pub wmg: u32,
    /// `M` relays as middle (always [`WEIGHT_SCALE`]).
    pub wmm: u32,
    /// `E` relays as middle.
    pub wme: u32,
    /// `D` relays as middle.
    pub wmd: u32,
    /// `E` relays as exit.
    pub wee: u32,
    /// `D` relays as exit.
    pub wed: u32,
}

/// `num / den` in weight units, 0 when `den` is 0 (an empty class: nothing to weigh).
fn ratio(num: i128, den: i128) -> i128 {
    if den == 0 {
        0
    } else {
        i128::from(WEIGHT_SCALE) * num / den
    }
}

fn in_range(w: i128) -> bool {
    (0..=i128::from(WEIGHT_SCALE)).contains(&w)
}

/// A weight clamped into `0..=WEIGHT_SCALE`.
fn clamp(w: i128) -> u32 {
    // Clamped to 0..=10_000 first, so the conversion cannot fail.
    u32::try_from(w.clamp(0, i128::from(WEIGHT_SCALE))).unwrap_or(0)
}

impl PositionWeights {
    /// The weights for these class totals.
    pub fn compute(totals: ClassTotals) -> Self {
        let s = i128::from(WEIGHT_SCALE);
        let t = totals.total();
        if t == 0 {
            return Self::all(WeightCase::NoBandwidth, WEIGHT_SCALE);
        }
        // Each total is at most u64::MAX times the number of relays: far inside i128.
        let as_i = |v: u128| i128::try_from(v).unwrap_or(i128::MAX / 16);
        let (g, e, d, m, t) = (
            as_i(totals.g),
            as_i(totals.e),
            as_i(totals.d),
            as_i(totals.m),
            as_i(t),
        );
        // (case, wgg, wgd, wmg, wme, wmd, wee, wed)
        type Weights = (WeightCase, i128, i128, i128, i128, i128, i128, i128);
        // Wgd = 0 and Wme·E = Wmd·D, each position carrying T / 3 (cases 1 and 3b, exits
        // scarce).
        let no_d_to_guards = |case| -> Weights {
            let wgg = ratio(d + e + g + m, 3 * g);
            let wmd = ratio(2 * d + 2 * e - g - m, 6 * d);
            let wme = ratio(2 * d + 2 * e - g - m, 6 * e);
            (case, wgg, 0, s - wgg, wme, wmd, s - wme, s - wmd)
        };
        // Wgg = 1, D shared by all three positions (cases 2b and 3b, guards scarce).
        let d_shared = |case| -> Weights {
            let wgd = ratio(d + e - 2 * g + m, 3 * d);
            let wmd = ratio(d + e + g - 2 * m, 6 * d);
            let wme = ratio(d + e + g - 2 * m, 6 * e);
            (case, s, wgd, 0, wme, wmd, s - wme, s - wgd - wmd)
        };
        let w: Weights = if 3 * e >= t && 3 * g >= t {
            // Case 1: plenty of both.
            no_d_to_guards(WeightCase::Plenty)
        } else if 3 * e < t && 3 * g < t {
            let (r, big) = (e.min(g), e.max(g));
            if r + d < big {
                // Case 2a: D wholly to the scarcer position, nothing flagged in the middle.
                let (wgd, wed) = if e < g { (0, s) } else { (s, 0) };
                (WeightCase::BothScarceSmallD, s, wgd, 0, 0, 0, s, wed)
            } else {
                // Case 2b: the middle's share from D and E, if the weights stay in range.
                let w = d_shared(WeightCase::BothScarce);
                if d != 0 && [w.2, w.5, w.4, w.7].into_iter().all(in_range) {
                    w
                } else {
                    // Tor's fallback: split D between guard and exit only.
                    let wgd = ratio(d + e - g, 2 * d).clamp(0, s);
                    (WeightCase::BothScarce, s, wgd, 0, 0, 0, s, s - wgd)
                }
            }
        } else {
            let scarce = e.min(g);
            if 3 * (scarce + d) < t {
                if g < e {
                    // Case 3a, guards scarce: G and D all guards; E shared with the
                    // middle only when E has more than M.
                    let wme = if e < m { 0 } else { ratio(e - m, 2 * e) };
                    (WeightCase::GuardsScarceSmallD, s, s, 0, wme, 0, s - wme, 0)
                } else {
                    // Case 3a, exits scarce: E and D all exits.
                    let wmg = if g < m { 0 } else { ratio(g - m, 2 * g) };
                    (WeightCase::ExitsScarceSmallD, s - wmg, 0, wmg, 0, 0, s, s)
                }
            } else if g < e {
                // Case 3b, guards scarce.
                d_shared(WeightCase::GuardsScarce)
            } else {
                // Case 3b, exits scarce.
                no_d_to_guards(WeightCase::ExitsScarce)
            }
        };
        // Each class's weights sum to 1 (Wgg + Wmg, Wme + Wee, Wgd + Wmd + Wed), so Wmg, Wee
        // and Wed are taken as the complements. Where a formula overshoots (an edge that Tor's
        // consistency check only reports), D goes to guard first, then middle, and the exit
        // takes the rest.
        let (case, wgg, wgd, _wmg, wme, wmd, _wee, _wed) = w;
        let wgd = clamp(wgd);
        let wmd = clamp(wmd).min(WEIGHT_SCALE - wgd);
        let wme = clamp(wme);
        let wgg = clamp(wgg);
        Self {
            case,
            wgg,
            wgd,
            wmg: WEIGHT_SCALE - wgg,
            wmm: WEIGHT_SCALE,
            wme,
            wmd,
            wee: WEIGHT_SCALE - wme,
            wed: WEIGHT_SCALE - wgd - wmd,
        }
    }

    /// The weights of `candidates` (see [`ClassTotals::of`]).
    pub fn of(candidates: &[&Candidate]) -> Self {
        Self::compute(ClassTotals::of(candidates))
    }

    fn all(case: WeightCase, w: u32) -> Self {
        Self {
            case,
            wgg: w,
            wgd: w,
            wmg: w,
            wmm: w,
            wme: w,
            wmd: w,
            wee: w,
            wed: w,
        }
    }

    /// The weight of a `class` relay at `position`, `0..=WEIGHT_SCALE`; 0 means never there.
    pub fn factor(&self, position: Position, class: Class) -> u32 {
        match (position, class) {
            (Position::Guard, Class::Guard) => self.wgg,
            (Position::Guard, Class::GuardExit) => self.wgd,
            (Position::Guard, Class::Exit | Class::Plain) => 0,
            (Position::Middle, Class::Guard) => self.wmg,
            (Position::Middle, Class::Exit) => self.wme,
            (Position::Middle, Class::GuardExit) => self.wmd,
            (Position::Middle, Class::Plain) => self.wmm,
            (Position::Exit, Class::Exit | Class::Plain) => self.wee,
            (Position::Exit, Class::GuardExit | Class::Guard) => self.wed,
        }
    }

    /// The weight of `candidate` at `position`: its bandwidth times its class's factor (in
    /// units of 1 / [`WEIGHT_SCALE`]).
    pub fn weight(&self, position: Position, candidate: &Candidate) -> u128 {
        u128::from(candidate.bandwidth)
            * u128::from(self.factor(position, Class::of(candidate.guard, candidate.exit)))
    }
}
