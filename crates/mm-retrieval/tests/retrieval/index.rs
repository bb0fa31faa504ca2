//! Both indexes against brute force, the index folder's durability (reopen, log replay, torn
//! and damaged records, a crash during save), bad input, and Recall@K against mm-core's.

use burn::backend::Flex;
use mm_core::metrics::{Scores, bidirectional_recall};
use mm_retrieval::durable::{LOG_FILE, SNAPSHOT_FILE};
use mm_retrieval::snapshot::{read_snapshot, write_snapshot};
use mm_retrieval::{
    CrossModalRetrieval, DurableIndex, ExactIndex, HnswIndex, HnswParams, IndexError, VectorIndex,
};
use serde_json::json;

type B = Flex;

use mm_data::synth::vectors::random_unit_vectors as unit_vectors;

use crate::common::{brute_force, recall_at_10};

#[test]
fn exact_index_matches_brute_force_across_blocks() {
    let dim = 24;
    let data = unit_vectors(3000, dim, 1);
    let queries = unit_vectors(40, dim, 2);
    let mut index = ExactIndex::<B>::new(dim, &Default::default()).with_tile(512);
    // Several adds: partly filled tiles topped up, then new tiles.
    for chunk in data.chunks(dim * 70) {
        index.add(chunk).unwrap();
    }
    assert_eq!(index.len(), 3000);
    let found = index.search_batch(&queries, 10).unwrap();
    for (q, hits) in queries.chunks(dim).zip(&found) {
        let ids: Vec<u64> = hits.iter().map(|h| h.id).collect();
        assert_eq!(ids, brute_force(&data, q, 10));
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    }
    assert_eq!(index.export().unwrap(), data);
    // One query searches whole tiles; a batch, blocks of `BATCH_BLOCK` rows within a tile.
    for q in queries.chunks(dim).take(3) {
        let ids: Vec<u64> = index.search(q, 10).unwrap().iter().map(|h| h.id).collect();
        assert_eq!(ids, brute_force(&data, q, 10));
    }
    let data = unit_vectors(5000, dim, 3);
    let mut index = ExactIndex::<B>::new(dim, &Default::default());
    index.add(&data).unwrap();
    // 5000 rows > BATCH_BLOCK (2048) and 40 queries > FEW_QUERIES (16): partial blocks.
    let found = index.search_batch(&queries, 10).unwrap();
    for (q, hits) in queries.chunks(dim).zip(&found) {
        let ids: Vec<u64> = hits.iter().map(|h| h.id).collect();
        assert_eq!(ids, brute_force(&data, q, 10));
    }
}

#[test]
fn hnsw_recall_is_high_and_its_graph_round_trips() {
    let dim = 16;
    let data = unit_vectors(4000, dim, 3);
    let queries = unit_vectors(100, dim, 4);
    let params = HnswParams {
        m: 16,
        ef_construction: 100,
        ef_search: 64,
    };
    let mut index = HnswIndex::new(dim, params).unwrap();
    index.add(&data).unwrap();
    let found = index.search_batch(&queries, 10).unwrap();
    for (q, hits) in queries.chunks(dim).zip(&found) {
        // Scores are inner products.
        let best = &data[hits[0].id as usize * dim..][..dim];
        let ip: f32 = best.iter().zip(q).map(|(a, b)| a * b).sum();
        assert!((ip - hits[0].score).abs() < 1e-5);
    }
    let recall = recall_at_10(&data, &queries, &found);
    assert!(recall > 0.95, "recall@10 {recall}");
    let restored =
        HnswIndex::from_graph(dim, params, &index.graph_bytes().unwrap().unwrap()).unwrap();
    assert_eq!(restored.search_batch(&queries, 10).unwrap(), found);
    assert_eq!(restored.export().unwrap(), data);
}

#[test]
fn hnsw_built_a_few_at_a_time_keeps_its_recall() {
    let dim = 32;
    let data = unit_vectors(3000, dim, 11);
    let queries = unit_vectors(50, dim, 12);
    let params = HnswParams {
        m: 8,
        ef_construction: 64,
        ef_search: 128,
    };
    let mut index = HnswIndex::new(dim, params).unwrap();
    assert!(index.search(&queries[..dim], 5).unwrap().is_empty());
    // One vector, then uneven batches: the path of `DurableIndex::add`.
    let mut at = 0;
    for (i, size) in [1, 1, 2, 7, 100, 889, 2000].into_iter().enumerate() {
        let ids = index.add(&data[at * dim..(at + size) * dim]).unwrap();
        assert_eq!(ids, at as u64..(at + size) as u64, "batch {i}");
        at += size;
    }
    assert_eq!(index.len(), 3000);
    let found = index.search_batch(&queries, 10).unwrap();
    let recall = recall_at_10(&data, &queries, &found);
    assert!(recall > 0.9, "recall@10 {recall}");
    // One query alone (on the calling thread) answers as in a batch.
    assert_eq!(index.search(&queries[..dim], 10).unwrap(), found[0]);
}

fn folder_with(dir: &std::path::Path, data: &[f32], dim: usize) -> DurableIndex {
    let mut index = DurableIndex::create(
        dir,
        Box::new(ExactIndex::<B>::new(dim, &Default::default())),
    )
    .unwrap();
    for (i, row) in data.chunks(dim).enumerate() {
        index
            .add(row, vec![json!({"name": format!("item {i}")})])
            .unwrap();
    }
    index
}

#[test]
fn acknowledged_additions_survive_reopening_and_saving() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let dim = 8;
    let data = unit_vectors(30, dim, 5);
    let index = folder_with(&dir, &data[..20 * dim], dim);
    drop(index); // no save: the 20 additions live in the log only
    let mut index = DurableIndex::open::<B>(&dir, &Default::default()).unwrap();
    assert_eq!(index.len(), 20);
    index.save().unwrap();
    assert_eq!(std::fs::metadata(dir.join(LOG_FILE)).unwrap().len(), 0);
    index
        .add(&data[20 * dim..], (20..30).map(|i| json!(i)).collect())
        .unwrap();
    drop(index);
    let index = DurableIndex::open::<B>(&dir, &Default::default()).unwrap();
    assert_eq!(index.len(), 30);
    let top = &index.search_batch(&data[25 * dim..26 * dim], 1).unwrap()[0][0];
    assert_eq!((top.id, &top.metadata), (25, &json!(25)));
    assert_eq!(index.metadata(3), Some(&json!({"name": "item 3"})));
}

#[test]
fn additions_after_a_save_in_a_new_folder_reopen() {
    // The path of `index build` past the compaction size: create, add, save, add.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let dim = 8;
    let data = unit_vectors(12, dim, 13);
    let mut index = folder_with(&dir, &data[..6 * dim], dim);
    index.save().unwrap();
    index
        .add(&data[6 * dim..], (6..12).map(|i| json!(i)).collect())
        .unwrap();
    drop(index);
    let index = DurableIndex::open::<B>(&dir, &Default::default()).unwrap();
    assert_eq!(index.len(), 12);
    assert_eq!(index.metadata(11), Some(&json!(11)));
}

#[test]
fn a_torn_last_record_is_dropped_and_damage_before_it_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let dim = 8;
    let data = unit_vectors(5, dim, 6);
    drop(folder_with(&dir, &data, dim));
    let log = dir.join(LOG_FILE);
    let bytes = std::fs::read(&log).unwrap();
    let record = bytes.len() / 5;
    // A crash in the middle of writing the fifth record.
    std::fs::write(&log, &bytes[..bytes.len() - record / 2]).unwrap();
    let mut index = DurableIndex::open::<B>(&dir, &Default::default()).unwrap();
    assert_eq!(index.len(), 4);
    index.add(&data[4 * dim..], vec![json!("again")]).unwrap();
    drop(index);
    assert_eq!(
        DurableIndex::open::<B>(&dir, &Default::default())
            .unwrap()
            .len(),
        5
    );
    // A flipped byte inside the second record, with records after it: an error, not loss.
    let mut bytes = std::fs::read(&log).unwrap();
    bytes[record + 40] ^= 0xff;
    std::fs::write(&log, &bytes).unwrap();
    let err = DurableIndex::open::<B>(&dir, &Default::default())
        .err()
        .unwrap();
    assert!(matches!(err, IndexError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("checksum"), "{err}");
}

#[test]
fn a_crash_during_save_keeps_the_previous_snapshot_and_damage_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let dim = 8;
    let data = unit_vectors(6, dim, 7);
    let mut index = folder_with(&dir, &data, dim);
    index.save().unwrap();
    drop(index);
    // A save that died while writing: a partial temporary file beside the snapshot.
    std::fs::write(
        dir.join(format!(".{SNAPSHOT_FILE}.tmp")),
        b"MMINDEX1 partial",
    )
    .unwrap();
    let index = DurableIndex::open::<B>(&dir, &Default::default()).unwrap();
    assert_eq!(index.len(), 6);
    drop(index);
    let snap = dir.join(SNAPSHOT_FILE);
    let mut bytes = std::fs::read(&snap).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x01;
    std::fs::write(&snap, &bytes).unwrap();
    let err = DurableIndex::open::<B>(&dir, &Default::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("checksum"), "{err}");
    std::fs::write(&snap, b"this is not an index file, only some text").unwrap();
    let err = DurableIndex::open::<B>(&dir, &Default::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("magic"), "{err}");
    let err = DurableIndex::open::<B>(&tmp.path().join("missing"), &Default::default())
        .err()
        .unwrap();
    assert!(matches!(err, IndexError::Io { .. }), "{err}");
    // Creating over an existing index is refused.
    let again = DurableIndex::create(
        &dir,
        Box::new(ExactIndex::<B>::new(dim, &Default::default())),
    );
    assert!(again.is_err());
}

#[test]
fn a_snapshot_whose_graph_and_metadata_disagree_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let dim = 8;
    let params = HnswParams::default();
    let index = Box::new(HnswIndex::new(dim, params).unwrap());
    let mut folder = DurableIndex::create(&dir, index).unwrap();
    folder
        .add(&unit_vectors(5, dim, 14), vec![json!(0); 5])
        .unwrap();
    folder.save().unwrap();
    drop(folder);
    // One metadata line too many, written with a valid checksum.
    let path = dir.join(SNAPSHOT_FILE);
    let mut snap = read_snapshot(&path).unwrap();
    snap.metadata.push(json!("extra"));
    write_snapshot(&path, &snap).unwrap();
    let err = DurableIndex::open::<B>(&dir, &Default::default())
        .err()
        .unwrap();
    assert!(matches!(err, IndexError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string().contains("5 vectors but 6 metadata"),
        "{err}"
    );
}

#[test]
fn bad_input_is_a_named_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let mut index = folder_with(&dir, &unit_vectors(3, 4, 8), 4);
    let wrong_width = index.add(&[0.5; 6], vec![json!(1)]).unwrap_err();
    assert!(
        wrong_width.to_string().contains("dimension 4"),
        "{wrong_width}"
    );
    let nan = index
        .add(&[0.5, f32::NAN, 0.0, 0.0], vec![json!(1)])
        .unwrap_err();
    assert!(nan.to_string().contains("non-finite"), "{nan}");
    let meta = index.add(&[0.5; 8], vec![json!(1)]).unwrap_err();
    assert!(meta.to_string().contains("metadata"), "{meta}");
    assert!(matches!(
        index.search_batch(&[0.5; 4], 0),
        Err(IndexError::ZeroK)
    ));
    assert!(index.search_batch(&[0.5; 3], 1).is_err());
    // Nothing bad reached the log.
    drop(index);
    assert_eq!(
        DurableIndex::open::<B>(&dir, &Default::default())
            .unwrap()
            .len(),
        3
    );
    assert!(
        HnswIndex::new(
            8,
            HnswParams {
                m: 1,
                ..Default::default()
            }
        )
        .is_err()
    );
}

#[test]
fn recall_through_the_indexes_matches_the_score_matrix_metric() {
    let dim = 12;
    let images = unit_vectors(60, dim, 9);
    // Two noisy captions per image.
    let mut rng = mm_data::rng::SplitMix64::new(10);
    let text_image: Vec<usize> = (0..120).map(|t| t / 2).collect();
    let mut texts: Vec<f32> = text_image
        .iter()
        .flat_map(|&i| images[i * dim..(i + 1) * dim].to_vec())
        .map(|v| v + 0.3 * (rng.normal() as f32))
        .collect();
    for row in texts.chunks_mut(dim) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        row.iter_mut().for_each(|v| *v /= norm);
    }
    let device = Default::default();
    let mut image_index = ExactIndex::<B>::new(dim, &device);
    image_index.add(&images).unwrap();
    let mut text_index = ExactIndex::<B>::new(dim, &device);
    text_index.add(&texts).unwrap();
    let retrieval = CrossModalRetrieval::new(Box::new(image_index), Box::new(text_index)).unwrap();
    let ks = [1, 5, 10];
    let report = retrieval.recall_at_k(&text_image, &ks).unwrap();
    let sim: Vec<f32> = images
        .chunks(dim)
        .flat_map(|i| {
            texts
                .chunks(dim)
                .map(move |t| i.iter().zip(t).map(|(a, b)| a * b).sum())
        })
        .collect();
    let (i2t, t2i) = bidirectional_recall(Scores::new(&sim, 60, 120), &text_image, &ks);
    assert_eq!(report.image_to_text, i2t);
    assert_eq!(report.text_to_image, t2i);
    assert!(
        report.text_to_image[0] > 0.2 && report.text_to_image[0] < 1.0,
        "{report:?}"
    );
    assert!(retrieval.recall_at_k(&text_image[..5], &ks).is_err());
}

/// Found by the `index_folder` fuzz target: row counts and vector widths whose product
/// overflows (in a log record with a valid checksum, or a snapshot header) are named damage,
/// not an arithmetic overflow.
#[test]
fn lengths_that_overflow_are_named_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let dim = 8;
    drop(folder_with(&dir, &unit_vectors(2, dim, 3), dim));
    // A log record claiming 2^62 rows of 8 floats, with a checksum that matches.
    let meta = b"[]";
    let mut record = Vec::new();
    record.extend(0x4d4d_5752u32.to_le_bytes());
    record.extend(2u64.to_le_bytes());
    record.extend((1u64 << 62).to_le_bytes());
    record.extend(0u64.to_le_bytes());
    record.extend((meta.len() as u64).to_le_bytes());
    record.extend(meta);
    record.extend(crc32fast::hash(&record).to_le_bytes());
    let log = dir.join(LOG_FILE);
    let mut bytes = std::fs::read(&log).unwrap();
    bytes.extend(&record);
    bytes.extend(&record); // not the last record: damage, not a torn write
    std::fs::write(&log, &bytes).unwrap();
    let err = DurableIndex::open::<B>(&dir, &Default::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("rows x dim"), "{err}");

    // A snapshot header whose count x dim overflows.
    let header = json!({
        "kind": {"kind": "exact"}, "dim": 1u64 << 40, "count": 1u64 << 40, "vector_bytes": 0,
        "graph_bytes": 0, "metadata_bytes": 0, "crc32": 0,
    })
    .to_string();
    let mut snap = b"MMINDEX1".to_vec();
    snap.extend((header.len() as u64).to_le_bytes());
    snap.extend(header.as_bytes());
    let path = dir.join(SNAPSHOT_FILE);
    std::fs::write(&path, &snap).unwrap();
    let err = read_snapshot(&path).err().unwrap();
    assert!(err.to_string().contains("count x dim"), "{err}");
}
