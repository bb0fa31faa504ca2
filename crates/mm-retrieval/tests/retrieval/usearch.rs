//! The usearch-backed index: recall against brute force, its graph through an index folder
//! (snapshot, log replay, reopen), and graphs that do not fit their file refused by name.

use burn::backend::Flex;
use mm_data::synth::vectors::random_unit_vectors as unit_vectors;
use mm_retrieval::durable::SNAPSHOT_FILE;
use mm_retrieval::snapshot::{read_snapshot, write_snapshot};
use mm_retrieval::{
    DurableIndex, Found, Hit, HnswIndex, HnswParams, IndexError, IndexKind, UsearchIndex,
    VectorIndex,
};
use serde_json::json;

use crate::common::recall_at_10;

type B = Flex;

const PARAMS: HnswParams = HnswParams {
    m: 16,
    ef_construction: 100,
    ef_search: 64,
};

#[test]
fn usearch_recall_is_high_and_its_graph_round_trips() {
    let dim = 16;
    let data = unit_vectors(4000, dim, 3);
    let queries = unit_vectors(100, dim, 4);
    let mut index = UsearchIndex::new(dim, PARAMS).unwrap();
    // Uneven batches, as an index folder adds them.
    let mut at = 0;
    for size in [1, 2, 97, 900, 3000] {
        let ids = index.add(&data[at * dim..(at + size) * dim]).unwrap();
        assert_eq!(ids, at as u64..(at + size) as u64);
        at += size;
    }
    assert_eq!(index.kind(), IndexKind::Usearch(PARAMS));
    let found = index.search_batch(&queries, 10).unwrap();
    for (q, hits) in queries.chunks(dim).zip(&found) {
        // Scores are inner products, best first.
        let best = &data[hits[0].id as usize * dim..][..dim];
        let ip: f32 = best.iter().zip(q).map(|(a, b)| a * b).sum();
        assert!(
            (ip - hits[0].score).abs() < 1e-5,
            "{ip} vs {}",
            hits[0].score
        );
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    }
    let recall = recall_at_10(&data, &queries, &found);
    assert!(recall > 0.95, "recall@10 {recall}");
    // One query alone answers as in a batch.
    assert_eq!(index.search(&queries[..dim], 10).unwrap(), found[0]);
    let bytes = index.graph_bytes().unwrap().unwrap();
    let restored = UsearchIndex::from_graph(dim, PARAMS, &bytes, 4000).unwrap();
    assert_eq!(restored.search_batch(&queries, 10).unwrap(), found);
    assert_eq!(restored.export().unwrap(), data);
}

/// The ids and scores of a folder's answers, as the index gives them.
fn hits(found: &[Vec<Found>]) -> Vec<Vec<Hit>> {
    let hit = |f: &Found| Hit {
        id: f.id,
        score: f.score,
    };
    found
        .iter()
        .map(|row| row.iter().map(hit).collect())
        .collect()
}

#[test]
fn a_usearch_index_folder_keeps_snapshot_and_log_across_reopening() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let dim = 12;
    let data = unit_vectors(600, dim, 21);
    let names = |r: std::ops::Range<usize>| r.map(|i| json!({"n": i})).collect::<Vec<_>>();
    let index = Box::new(UsearchIndex::new(dim, PARAMS).unwrap());
    drop(DurableIndex::create(&dir, index).unwrap()); // an empty graph in the snapshot
    let mut folder = DurableIndex::open::<B>(&dir, &Default::default()).unwrap();
    assert!(folder.search_batch(&data[..dim], 3).unwrap()[0].is_empty());
    folder.add(&data[..400 * dim], names(0..400)).unwrap();
    // 400 in the snapshot's usearch graph, 200 in the log only.
    folder.save().unwrap();
    folder.add(&data[400 * dim..], names(400..600)).unwrap();
    // Stored vectors from both sides of the save. usearch inserts in parallel, so two builds
    // of the same rows need not give the same graph: each is held to brute force instead.
    let queries = &data[350 * dim..450 * dim];
    let before = folder.search_batch(queries, 10).unwrap();
    assert!(recall_at_10(&data, queries, &hits(&before)) > 0.9);
    drop(folder);

    let folder = DurableIndex::open::<B>(&dir, &Default::default()).unwrap();
    assert_eq!(folder.len(), 600);
    assert_eq!(folder.index().kind(), IndexKind::Usearch(PARAMS));
    assert_eq!(folder.index().export().unwrap(), data);
    let after = folder.search_batch(queries, 10).unwrap();
    assert!(recall_at_10(&data, queries, &hits(&after)) > 0.9);
    let found_itself = (350..450u64)
        .zip(&after)
        .filter(|(i, hits)| hits[0].id == *i)
        .count();
    assert!(
        found_itself >= 95,
        "{found_itself} of 100 found themselves first"
    );
    for hit in after.iter().flatten() {
        assert_eq!(hit.metadata, json!({"n": hit.id}));
    }
    drop(folder);

    // Folders from before our own HNSW hold usearch's graph under the kind "hnsw": they open
    // as usearch indexes, and say so from then on. A saved graph reloads as it was: the same
    // answers, hit for hit.
    let path = dir.join(SNAPSHOT_FILE);
    let mut folder = DurableIndex::open::<B>(&dir, &Default::default()).unwrap();
    let saved = folder.search_batch(queries, 10).unwrap();
    folder.save().unwrap();
    drop(folder);
    let mut snap = read_snapshot(&path).unwrap();
    snap.kind = IndexKind::Hnsw(PARAMS);
    write_snapshot(&path, &snap).unwrap();
    let mut folder = DurableIndex::open::<B>(&dir, &Default::default()).unwrap();
    assert_eq!(folder.index().kind(), IndexKind::Usearch(PARAMS));
    assert_eq!(folder.search_batch(queries, 10).unwrap(), saved);
    folder.save().unwrap();
    assert_eq!(
        read_snapshot(&path).unwrap().kind,
        IndexKind::Usearch(PARAMS)
    );
}

#[test]
fn a_usearch_graph_that_does_not_fit_its_file_is_refused_by_name() {
    let dim = 8;
    let data = unit_vectors(300, dim, 31);
    let mut index = UsearchIndex::new(dim, PARAMS).unwrap();
    index.add(&data).unwrap();
    let bytes = index.graph_bytes().unwrap().unwrap();
    let refuse = |dim: usize, params: HnswParams, bytes: &[u8], count: usize| {
        match UsearchIndex::from_graph(dim, params, bytes, count) {
            Err(e @ IndexError::Hnsw(_)) => e.to_string(),
            Err(e) => panic!("wrong error kind: {e}"),
            Ok(_) => panic!("accepted a graph that does not fit"),
        }
    };
    let wrong_dim = refuse(16, PARAMS, &bytes, 300);
    assert!(
        wrong_dim.contains("8-d") && wrong_dim.contains("16-d"),
        "{wrong_dim}"
    );
    let wrong_count = refuse(dim, PARAMS, &bytes, 301);
    assert!(wrong_count.contains("301"), "{wrong_count}");
    let wrong_m = HnswParams { m: 8, ..PARAMS };
    let wrong_m = refuse(dim, wrong_m, &bytes, 300);
    assert!(wrong_m.contains("connectivity"), "{wrong_m}");
    let cut = refuse(dim, PARAMS, &bytes[..bytes.len() / 2], 300);
    assert!(cut.contains("usearch"), "{cut}");
    let text = refuse(dim, PARAMS, b"not a usearch graph at all, only text", 300);
    assert!(text.contains("usearch"), "{text}");
    // A graph of our own HNSW under a usearch header (checksum intact): refused on open.
    let ours = HnswIndex::new(dim, PARAMS).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let mut folder = DurableIndex::create(&dir, Box::new(ours)).unwrap();
    folder.add(&data, vec![json!(0); 300]).unwrap();
    folder.save().unwrap();
    drop(folder);
    let path = dir.join(SNAPSHOT_FILE);
    let mut snap = read_snapshot(&path).unwrap();
    snap.kind = IndexKind::Usearch(PARAMS);
    write_snapshot(&path, &snap).unwrap();
    let err = DurableIndex::open::<B>(&dir, &Default::default())
        .err()
        .unwrap();
    assert!(matches!(err, IndexError::Hnsw(_)), "{err}");
}
