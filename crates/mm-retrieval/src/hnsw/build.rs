//! Inserting a node: descend to its level, beam-search each level below for its neighbours,
//! link both ways, and prune a neighbour's list with the selection heuristic when it is full.
//! Many threads insert at once; each list is rewritten under its node's lock, one lock at a time.

use std::sync::Mutex;

use super::graph::{Entry, Graph, MAX_LEVEL};
use super::search::{Cand, Scratch, greedy, search_level, select};
use crate::simd::Dot;

/// The level of node `id`: geometric with ratio `1/m`, drawn from a hash of the id so a build
/// is reproducible whatever the thread count.
pub(crate) fn level_of(id: u64, m: usize) -> u8 {
    // splitmix64
    let mut z = id.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    // A uniform in (0, 1].
    let u = ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let level = (-u.ln() / (m as f64).ln()).floor();
    level.min(MAX_LEVEL as f64) as u8
}

/// Links `node` (already pushed, unlinked) into the graph. `top` serializes the insertions of
/// nodes that rise above the current entry level.
pub(crate) fn insert(g: &Graph, dot: &Dot, top: &Mutex<()>, node: u32, ef: usize, s: &mut Scratch) {
    let level = g.levels[node as usize];
    let q = g.vector(node);
    let mut entry = g.entry();
    let raises = entry.is_none_or(|e| level > e.level);
    let _top = raises.then(|| top.lock().unwrap_or_else(|e| e.into_inner()));
    if raises {
        entry = g.entry();
    }
    let Some(e) = entry else {
        *g.entry.lock().unwrap_or_else(|e| e.into_inner()) = Some(Entry { node, level });
        return;
    };
    let mut best = Cand {
        sim: dot.one(q, g.vector(e.node)),
        id: e.node,
    };
    for lc in (level + 1..=e.level).rev() {
        best = greedy(g, dot, q, best, lc, s);
    }
    let mut entries = vec![best];
    for lc in (0..=level.min(e.level)).rev() {
        let mut found = search_level(g, dot, q, &entries, ef, lc, s);
        found.retain(|c| c.id != node);
        let mut chosen = std::mem::take(&mut s.chosen);
        select(g, dot, &found, g.capacity(lc), &mut chosen);
        s.neighbours.clear();
        s.neighbours.extend(chosen.iter().map(|c| c.id));
        {
            let _lock = g.lock(node);
            g.set_neighbours(node, lc, &s.neighbours);
        }
        for c in &chosen {
            link(
                g,
                dot,
                c.id,
                Cand {
                    sim: c.sim,
                    id: node,
                },
                lc,
                s,
            );
        }
        s.chosen = chosen;
        if !found.is_empty() {
            entries = found;
        }
    }
    if level > e.level {
        *g.entry.lock().unwrap_or_else(|e| e.into_inner()) = Some(Entry { node, level });
    }
}

/// Adds `new` to `target`'s list at `level`, pruning the list if it is full.
fn link(g: &Graph, dot: &Dot, target: u32, new: Cand, level: u8, s: &mut Scratch) {
    let _lock = g.lock(target);
    g.neighbours(target, level, &mut s.neighbours);
    if s.neighbours.contains(&new.id) {
        return;
    }
    let cap = g.capacity(level);
    if s.neighbours.len() < cap {
        s.neighbours.push(new.id);
        g.set_neighbours(target, level, &s.neighbours);
        return;
    }
    let base = g.vector(target);
    s.list.clear();
    let mut quads = s.neighbours.chunks_exact(4);
    for ids in &mut quads {
        let sims = dot.four(base, [ids[0], ids[1], ids[2], ids[3]].map(|n| g.vector(n)));
        s.list
            .extend(sims.iter().zip(ids).map(|(&sim, &id)| Cand { sim, id }));
    }
    for &id in quads.remainder() {
        s.list.push(Cand {
            sim: dot.one(base, g.vector(id)),
            id,
        });
    }
    s.list.push(new);
    s.list.sort_unstable_by(|a, b| b.cmp(a));
    let mut kept = std::mem::take(&mut s.chosen);
    select(g, dot, &s.list, cap, &mut kept);
    s.neighbours.clear();
    s.neighbours.extend(kept.iter().map(|c| c.id));
    g.set_neighbours(target, level, &s.neighbours);
    s.chosen = kept;
}
