//! Inserting a node: descend to its level, beam-search each level below for its neighbours,
//! link both ways, and prune a neighbour's list with the selection heuristic when it is full.
//! Many threads insert at once; each list is rewritten under its node's lock, one lock at a time.

use std::sync::Mutex;

use super::graph::{Entry, Graph, MAX_LEVEL};
use super::search::{Cand, Scratch, closer_to_a_kept_one, greedy, search_level, select};
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
            g.set_neighbours(node, lc, &s.neighbours, s.neighbours.len());
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

/// Adds `new` to `target`'s list at `level`; a full list is cut back to its capacity by the
/// selection heuristic, as FAISS and hnswlib do.
///
/// The heuristic's own output needs no second look: each node it kept already passed the test
/// against every kept node before it, so rerunning it over a list only has to test the pairs
/// that involve a node appended since (or `new`). A list cut before costs about `2 cap` inner
/// products to cut again instead of about `cap^2 / 2`, and keeps the same nodes.
fn link(g: &Graph, dot: &Dot, target: u32, new: Cand, level: u8, s: &mut Scratch) {
    let _lock = g.lock(target);
    let selected = g.neighbours_selected(target, level, &mut s.neighbours);
    if s.neighbours.contains(&new.id) {
        return;
    }
    let cap = g.capacity(level);
    if s.neighbours.len() < cap {
        s.neighbours.push(new.id);
        g.set_neighbours(target, level, &s.neighbours, selected);
        return;
    }
    let base = g.vector(target);
    let mut list = std::mem::take(&mut s.list);
    scores(g, dot, base, &s.neighbours, &mut list);
    list.push(new);
    // The appended nodes and `new`, best first, after the heuristic's output (kept in order).
    list[selected..].sort_unstable_by(|a, b| b.cmp(a));
    let mut kept = std::mem::take(&mut s.chosen);
    let (checked, unchecked) = list.split_at(selected);
    cut(
        g,
        dot,
        checked,
        unchecked,
        cap,
        &mut kept,
        &mut s.fresh_kept,
    );
    s.neighbours.clear();
    s.neighbours.extend(kept.iter().map(|c| c.id));
    g.set_neighbours(target, level, &s.neighbours, kept.len());
    s.list = list;
    s.chosen = kept;
}

/// The inner product of `base` with each of `ids`, in order.
fn scores(g: &Graph, dot: &Dot, base: &[f32], ids: &[u32], out: &mut Vec<Cand>) {
    out.clear();
    let mut quads = ids.chunks_exact(4);
    for q in &mut quads {
        let sims = dot.four(base, [q[0], q[1], q[2], q[3]].map(|n| g.vector(n)));
        out.extend(sims.iter().zip(q).map(|(&sim, &id)| Cand { sim, id }));
    }
    for &id in quads.remainder() {
        out.push(Cand {
            sim: dot.one(base, g.vector(id)),
            id,
        });
    }
}

/// The selection heuristic over `checked` (its own earlier output, best first) merged with
/// `unchecked` (best first): the same nodes as [`select`] over both, testing a pair of nodes
/// only when one of them is unchecked. `fresh` is scratch for the kept unchecked nodes.
fn cut(
    g: &Graph,
    dot: &Dot,
    checked: &[Cand],
    unchecked: &[Cand],
    cap: usize,
    kept: &mut Vec<Cand>,
    fresh: &mut Vec<Cand>,
) {
    kept.clear();
    fresh.clear();
    let (mut i, mut j) = (0, 0);
    while kept.len() < cap && (i < checked.len() || j < unchecked.len()) {
        if j == unchecked.len() || (i < checked.len() && checked[i] > unchecked[j]) {
            let c = checked[i];
            i += 1;
            if !closer_to_a_kept_one(g, dot, c, fresh) {
                kept.push(c);
            }
        } else {
            let c = unchecked[j];
            j += 1;
            if !closer_to_a_kept_one(g, dot, c, kept) {
                kept.push(c);
                fresh.push(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Narrow enough that the heuristic drops candidates, wide enough that lists fill.
    const DIM: usize = 16;
    const N: u32 = 400;

    /// `N` unit vectors of width `DIM` from a fixed hash.
    fn graph(m: usize) -> Graph {
        let mut g = Graph::new(DIM, m);
        let mut v: Vec<f32> = (0..N as usize * DIM)
            .map(|i| {
                let mut z = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                z = (z ^ (z >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 29)).wrapping_mul(0x94D0_49BB_1331_11EB);
                (z >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect();
        for row in v.chunks_mut(DIM) {
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            row.iter_mut().for_each(|x| *x /= norm);
        }
        g.push(&v, &vec![0; N as usize]);
        g
    }

    /// The full heuristic over `ids` (any order) for `target`.
    fn full(g: &Graph, dot: &Dot, target: u32, ids: &[u32], cap: usize) -> Vec<Cand> {
        let mut all = Vec::new();
        scores(g, dot, g.vector(target), ids, &mut all);
        all.sort_unstable_by(|a, b| b.cmp(a));
        let mut out = Vec::new();
        select(g, dot, &all, cap, &mut out);
        out
    }

    #[test]
    fn cutting_a_list_again_keeps_what_the_full_heuristic_keeps() {
        let (dot, cap) = (Dot::new(), 8);
        let g = graph(cap / 2);
        let mut s = Scratch::default();
        let (mut checked, mut changed) = (0, 0);
        for target in 0..40u32 {
            // Newcomers: every other node of the 40 nearest, so most of them compete.
            let everyone: Vec<u32> = (0..N).filter(|&i| i != target).collect();
            let mut ranked = Vec::new();
            scores(&g, &dot, g.vector(target), &everyone, &mut ranked);
            ranked.sort_unstable_by(|a, b| b.cmp(a));
            let newcomers: Vec<u32> = ranked[..40].iter().step_by(2).map(|c| c.id).collect();
            let others: Vec<u32> = everyone
                .into_iter()
                .filter(|i| !newcomers.contains(i))
                .collect();
            let list: Vec<u32> = full(&g, &dot, target, &others, cap)
                .iter()
                .map(|c| c.id)
                .collect();
            if list.len() < cap {
                continue;
            }
            for (k, &new) in newcomers[..newcomers.len() - 2].iter().enumerate() {
                // The heuristic's output, then 0 to 2 nodes appended unchecked.
                let appended = k % 3;
                let mut ids = list[..cap - appended].to_vec();
                ids.extend(&newcomers[newcomers.len() - appended..]);
                g.set_neighbours(target, 0, &ids, cap - appended);
                let sim = dot.one(g.vector(target), g.vector(new));
                link(&g, &dot, target, Cand { sim, id: new }, 0, &mut s);

                let mut got = Vec::new();
                let selected = g.neighbours_selected(target, 0, &mut got);
                ids.push(new);
                let want: Vec<u32> = full(&g, &dot, target, &ids, cap)
                    .iter()
                    .map(|c| c.id)
                    .collect();
                assert_eq!(
                    got, want,
                    "target {target}, newcomer {new}, {appended} appended"
                );
                assert_eq!(selected, got.len());
                checked += 1;
                changed += usize::from(!got.starts_with(&list[..cap - appended]));
            }
        }
        // The data must give full lists and cuts that change them, or this checks little.
        assert!(
            checked > 300 && changed > 100,
            "{checked} cuts, {changed} changed"
        );
    }
}
