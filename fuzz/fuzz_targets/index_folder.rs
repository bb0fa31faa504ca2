//! Any bytes as an index folder's snapshot (`index.mmi`) or log (`log.mmw`), for each index
//! kind (exact, our HNSW graph, usearch's graph): opening gives the index or an error naming
//! the damage, never a panic, a crash inside the graph library, or a huge allocation.
//!
//! Input: the first byte picks the file (even: the snapshot, with an empty log; odd: the log,
//! after a whole snapshot of kind `byte / 2 % 3`); the rest is its content.
//!
//! A snapshot whose graph is usearch's is not opened: usearch (C++) trusts its graph bytes and
//! reads out of bounds on a forged one (found here; docs/reliability.md). Outside fuzzing the
//! snapshot's checksum stops accidental damage before usearch sees it.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use burn::backend::NdArray;
use libfuzzer_sys::fuzz_target;
use mm_retrieval::durable::{LOG_FILE, SNAPSHOT_FILE};
use mm_retrieval::{DurableIndex, ExactIndex, HnswIndex, HnswParams, UsearchIndex, VectorIndex};
use serde_json::json;

const DIM: usize = 4;

/// The snapshot files of a whole folder of each kind, made once per process.
fn whole_snapshots() -> &'static [Vec<u8>; 3] {
    static SNAPSHOTS: OnceLock<[Vec<u8>; 3]> = OnceLock::new();
    SNAPSHOTS.get_or_init(|| {
        let params = HnswParams {
            m: 4,
            ef_construction: 8,
            ef_search: 8,
        };
        let kinds: [Box<dyn Fn() -> Box<dyn VectorIndex>>; 3] = [
            Box::new(|| Box::new(ExactIndex::<NdArray>::new(DIM, &Default::default()))),
            Box::new(move || Box::new(HnswIndex::new(DIM, params).unwrap())),
            Box::new(move || Box::new(UsearchIndex::new(DIM, params).unwrap())),
        ];
        kinds.map(|make| {
            let dir = scratch("seed");
            let _ = std::fs::remove_dir_all(&dir);
            let mut index = DurableIndex::create(&dir, make()).unwrap();
            let vectors: Vec<f32> = (0..8 * DIM).map(|i| ((i * 7 % 11) as f32) - 5.0).collect();
            let meta = (0..8).map(|i| json!({ "i": i })).collect();
            index.add(&vectors, meta).unwrap();
            index.save().unwrap();
            std::fs::read(dir.join(SNAPSHOT_FILE)).unwrap()
        })
    })
}

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("mm-fuzz-index-{name}-{}", std::process::id()))
}

fn write(dir: &Path, snapshot: &[u8], log: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(SNAPSHOT_FILE), snapshot).unwrap();
    std::fs::write(dir.join(LOG_FILE), log).unwrap();
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let dir = scratch("case");
    if pick % 2 == 0 {
        write(&dir, bytes, &[]);
        let snapshot = mm_retrieval::snapshot::read_snapshot(&dir.join(SNAPSHOT_FILE));
        if snapshot.is_ok_and(|s| matches!(s.kind, mm_retrieval::index::IndexKind::Usearch(_))) {
            return;
        }
    } else {
        // Our own graph and the exact index only (see above).
        write(&dir, &whole_snapshots()[(pick / 2 % 2) as usize], bytes);
    }
    if let Ok(index) = DurableIndex::open::<NdArray>(&dir, &Default::default()) {
        let dim = index.index().dim();
        assert_eq!(index.index().len(), index.len());
        if dim > 0 && dim <= 4096 {
            let query = vec![0.5f32; dim];
            let found = index.search_batch(&query, 3).unwrap();
            assert!(found[0].len() <= 3.min(index.len()));
        }
    }
});
