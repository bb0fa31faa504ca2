//! Folding the log into a snapshot in three steps (begin, write, finish) while additions go on:
//! what was added meanwhile stays in the log, a crash between the steps loses nothing, an
//! older snapshot never replaces a newer one, and the log limit makes `add` save in line.

use std::path::Path;

use burn::backend::Flex;
use mm_data::synth::vectors::random_unit_vectors as unit_vectors;
use mm_retrieval::durable::SNAPSHOT_FILE;
use mm_retrieval::snapshot::read_snapshot;
use mm_retrieval::{DurableIndex, ExactIndex};
use serde_json::json;

type B = Flex;
const DIM: usize = 8;

fn new_folder(dir: &Path) -> DurableIndex {
    DurableIndex::create(
        dir,
        Box::new(ExactIndex::<B>::new(DIM, &Default::default())),
    )
    .unwrap()
}

/// Adds rows `from..to` of `data`, one record each, with metadata `{"n": i}`.
fn add_rows(index: &mut DurableIndex, data: &[f32], from: usize, to: usize) {
    for i in from..to {
        let row = &data[i * DIM..(i + 1) * DIM];
        index.add(row, vec![json!({"n": i})]).unwrap();
    }
}

fn entries_in_snapshot(dir: &Path) -> usize {
    read_snapshot(&dir.join(SNAPSHOT_FILE))
        .unwrap()
        .metadata
        .len()
}

fn reopened(dir: &Path, data: &[f32], expected: usize) {
    let index = DurableIndex::open::<B>(dir, &Default::default()).unwrap();
    assert_eq!(index.len(), expected);
    for i in [0, expected / 2, expected - 1] {
        let top = &index
            .search_batch(&data[i * DIM..(i + 1) * DIM], 1)
            .unwrap()[0][0];
        assert_eq!((top.id, &top.metadata), (i as u64, &json!({"n": i})));
    }
}

#[test]
fn additions_during_a_background_snapshot_stay_in_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let data = unit_vectors(15, DIM, 1);
    let mut index = new_folder(&dir);
    add_rows(&mut index, &data, 0, 10);
    let pending = index.begin_snapshot().unwrap();
    assert_eq!(pending.len(), 10);
    let before = index.log_bytes();
    add_rows(&mut index, &data, 10, 15); // while the snapshot is being written
    let five_records = index.log_bytes() - before;
    let written = pending.write().unwrap();
    assert_eq!(entries_in_snapshot(&dir), 10);
    index.finish_snapshot(written).unwrap();
    assert_eq!(index.log_bytes(), five_records);
    assert_eq!(
        std::fs::metadata(dir.join("log.mmw")).unwrap().len(),
        five_records
    );
    // The new log takes further additions.
    let more = unit_vectors(20, DIM, 1);
    add_rows(&mut index, &more, 15, 20);
    drop(index);
    let mut all = data.clone();
    all.extend_from_slice(&more[15 * DIM..]);
    reopened(&dir, &all, 20);
}

#[test]
fn a_crash_between_writing_and_finishing_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let data = unit_vectors(12, DIM, 2);
    let mut index = new_folder(&dir);
    add_rows(&mut index, &data, 0, 8);
    let pending = index.begin_snapshot().unwrap();
    add_rows(&mut index, &data, 8, 12);
    pending.write().unwrap();
    drop(index); // died before finish: the log still holds records the snapshot has
    assert_eq!(entries_in_snapshot(&dir), 8);
    reopened(&dir, &data, 12);
}

#[test]
fn an_older_snapshot_never_replaces_a_newer_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let data = unit_vectors(15, DIM, 3);
    let mut index = new_folder(&dir);
    add_rows(&mut index, &data, 0, 10);
    let older = index.begin_snapshot().unwrap();
    add_rows(&mut index, &data, 10, 15);
    let newer = index.begin_snapshot().unwrap();
    let newer = newer.write().unwrap();
    let older = older.write().unwrap(); // finds a newer file on disk: writes nothing
    assert_eq!(entries_in_snapshot(&dir), 15);
    // Finishing in either order keeps every entry.
    index.finish_snapshot(older).unwrap();
    index.finish_snapshot(newer).unwrap();
    drop(index);
    reopened(&dir, &data, 15);
    let mut index = DurableIndex::open::<B>(&dir, &Default::default()).unwrap();
    index.save().unwrap();
    assert_eq!(index.log_bytes(), 0);
}

#[test]
fn the_log_limit_asks_for_compaction_then_saves_in_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let data = unit_vectors(40, DIM, 4);
    let mut index = new_folder(&dir);
    add_rows(&mut index, &data, 0, 1);
    let record = index.log_bytes();
    index.set_log_limit(10 * record);
    add_rows(&mut index, &data, 1, 5);
    assert!(!index.wants_compaction());
    add_rows(&mut index, &data, 5, 6);
    assert!(index.wants_compaction()); // past half the limit
    add_rows(&mut index, &data, 6, 11); // 11 records > 10: saved before `add` returned
    assert_eq!(index.log_bytes(), 0);
    assert_eq!(entries_in_snapshot(&dir), 11);
    drop(index);
    reopened(&dir, &data, 11);
}
