//! Walking the graph: greedy descent through the upper levels, the best-first beam search of
//! one level (`ef` candidates), and the neighbour-selection heuristic of Malkov & Yashunin
//! (2018), which keeps a candidate only if it is closer to the base than to every neighbour
//! already kept.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::graph::Graph;
use crate::simd::Dot;

/// A node and its inner product with the vector being searched for; orders by score, then id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Cand {
    /// Inner product with the query.
    pub sim: f32,
    /// The node.
    pub id: u32,
}

impl Eq for Cand {}

impl PartialOrd for Cand {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Cand {
    fn cmp(&self, other: &Self) -> Ordering {
        self.sim.total_cmp(&other.sim).then(other.id.cmp(&self.id))
    }
}

/// Which nodes a search has seen: a tag per node, so starting a search costs nothing.
#[derive(Default)]
struct Visited {
    tags: Vec<u32>,
    tag: u32,
}

impl Visited {
    fn begin(&mut self, n: usize) {
        if self.tags.len() < n {
            self.tags.resize(n, 0);
        }
        self.tag = self.tag.wrapping_add(1);
        if self.tag == 0 {
            self.tags.fill(0);
            self.tag = 1;
        }
    }

    /// Marks `id`; true the first time.
    #[inline]
    fn insert(&mut self, id: u32) -> bool {
        let slot = &mut self.tags[id as usize];
        let fresh = *slot != self.tag;
        *slot = self.tag;
        fresh
    }
}

/// Per-thread buffers reused across searches and insertions.
#[derive(Default)]
pub(crate) struct Scratch {
    visited: Visited,
    frontier: BinaryHeap<Cand>,
    best: BinaryHeap<Reverse<Cand>>,
    pub(crate) neighbours: Vec<u32>,
    fresh: Vec<u32>,
    pub(crate) list: Vec<Cand>,
    pub(crate) chosen: Vec<Cand>,
    pub(crate) fresh_kept: Vec<Cand>,
}

/// Follows improving neighbours at `level` from `start` until none improves.
pub(crate) fn greedy(
    g: &Graph,
    dot: &Dot,
    q: &[f32],
    start: Cand,
    level: u8,
    s: &mut Scratch,
) -> Cand {
    let mut best = start;
    loop {
        let before = best.id;
        g.neighbours(best.id, level, &mut s.neighbours);
        for &n in &s.neighbours {
            let sim = dot.one(q, g.vector(n));
            if sim > best.sim {
                best = Cand { sim, id: n };
            }
        }
        if best.id == before {
            return best;
        }
    }
}

/// The `ef` nodes nearest `q` at `level` reachable from `entries`, best first.
pub(crate) fn search_level(
    g: &Graph,
    dot: &Dot,
    q: &[f32],
    entries: &[Cand],
    ef: usize,
    level: u8,
    s: &mut Scratch,
) -> Vec<Cand> {
    let Scratch {
        visited,
        frontier,
        best,
        neighbours,
        fresh,
        ..
    } = s;
    visited.begin(g.len());
    frontier.clear();
    best.clear();
    for &e in entries {
        if visited.insert(e.id) {
            frontier.push(e);
            best.push(Reverse(e));
        }
    }
    while best.len() > ef {
        best.pop();
    }
    let mut worst = best.peek().map_or(f32::NEG_INFINITY, |r| r.0.sim);
    while let Some(c) = frontier.pop() {
        if best.len() >= ef && c.sim < worst {
            break;
        }
        g.neighbours(c.id, level, neighbours);
        fresh.clear();
        fresh.extend(neighbours.iter().copied().filter(|&n| visited.insert(n)));
        let mut offer = |sim: f32, id: u32| {
            if best.len() < ef || sim > worst {
                frontier.push(Cand { sim, id });
                best.push(Reverse(Cand { sim, id }));
                if best.len() > ef {
                    best.pop();
                }
                worst = best.peek().map_or(f32::NEG_INFINITY, |r| r.0.sim);
            }
        };
        // Four rows per pass: the query is read once and four memory streams are in flight.
        let mut quads = fresh.chunks_exact(4);
        for ids in &mut quads {
            let sims = dot.four(q, [ids[0], ids[1], ids[2], ids[3]].map(|n| g.vector(n)));
            for (&sim, &id) in sims.iter().zip(ids) {
                offer(sim, id);
            }
        }
        for &id in quads.remainder() {
            offer(dot.one(q, g.vector(id)), id);
        }
    }
    let mut out: Vec<Cand> = best.drain().map(|r| r.0).collect();
    out.sort_unstable_by(|a, b| b.cmp(a));
    out
}

/// Keeps at most `cap` of `candidates` (best first by similarity to the base): a candidate is
/// kept only if no kept neighbour is more similar to it than the base is.
pub(crate) fn select(g: &Graph, dot: &Dot, candidates: &[Cand], cap: usize, out: &mut Vec<Cand>) {
    out.clear();
    for &c in candidates {
        if out.len() >= cap {
            break;
        }
        if !closer_to_a_kept_one(g, dot, c, out) {
            out.push(c);
        }
    }
}

/// Whether some node of `kept` is more similar to `c` than `c`'s base is (four rows per pass;
/// on spread-out data most candidates are kept, so the pass rarely stops early).
pub(crate) fn closer_to_a_kept_one(g: &Graph, dot: &Dot, c: Cand, kept: &[Cand]) -> bool {
    let v = g.vector(c.id);
    let mut quads = kept.chunks_exact(4);
    for rows in &mut quads {
        let sims = dot.four(
            v,
            [&rows[0], &rows[1], &rows[2], &rows[3]].map(|r| g.vector(r.id)),
        );
        if sims.iter().any(|&sim| sim > c.sim) {
            return true;
        }
    }
    quads
        .remainder()
        .iter()
        .any(|r| dot.one(v, g.vector(r.id)) > c.sim)
}
