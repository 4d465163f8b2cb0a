//! Power cuts at random points, while the writer is running, under every fsync policy, with
//! or without a torn unsynced tail: each reopen recovers exactly a prefix of what was appended
//! that includes everything made durable (acknowledged by `wait_durable` under `Always` and
//! `EveryMillis`, or by `sync` under any policy), and the log keeps working across several
//! crash/reopen generations.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a panic is the failure report

mod common;

use std::path::Path;
use std::sync::Arc;

use common::open_collect;
use proptest::prelude::*;
use session_ha::fs::FaultyFs;
use session_ha::wal::{FsyncPolicy, WalConfig};

const DIR: &str = "/data/wal";

#[derive(Clone, Debug)]
enum Step {
    /// Append this many records without waiting.
    Append(u8),
    /// Append one record and wait for it.
    AppendWait,
    /// Force a sync.
    Sync,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1u8..6).prop_map(Step::Append),
        Just(Step::AppendWait),
        Just(Step::Sync),
    ]
}

fn policy() -> impl Strategy<Value = FsyncPolicy> {
    prop_oneof![
        Just(FsyncPolicy::Always),
        (0u32..3).prop_map(FsyncPolicy::EveryMillis),
        Just(FsyncPolicy::Never),
    ]
}

/// The body of the record with this sequence number: recognisable after recovery.
fn body_of(seq: u64) -> Vec<u8> {
    let n = (seq % 13) as usize + 1;
    seq.to_le_bytes().iter().copied().cycle().take(n).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn recovery_is_the_durable_prefix_after_each_crash(
        generations in proptest::collection::vec(
            (proptest::collection::vec(step(), 1..12), proptest::option::of(any::<u64>())),
            1..4,
        ),
        policy in policy(),
        segment_records in 2u64..6,
    ) {
        let fs = FaultyFs::new();
        let config = WalConfig {
            segment_size: 24 + segment_records * 33,
            ..WalConfig::with_fsync(policy)
        };
        // The log as it must be: seqs 1..=log_end, each with body_of(seq).
        let mut log_end = 0u64;
        for (steps, tear) in generations {
            let (wal, _, got) =
                open_collect(Arc::new(fs.clone()), Path::new(DIR), config.clone(), 0).unwrap();
            let seqs: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
            prop_assert!(seqs.len() as u64 <= log_end, "more came back than was appended");
            for (seq, body) in &got {
                prop_assert_eq!(body, &body_of(*seq));
            }
            prop_assert_eq!(seqs, (1..=got.len() as u64).collect::<Vec<_>>());
            log_end = got.len() as u64;

            let mut acked = log_end;
            for s in steps {
                match s {
                    Step::Append(n) => {
                        for _ in 0..n {
                            let seq = wal.append(&body_of(log_end + 1)).unwrap();
                            prop_assert_eq!(seq, log_end + 1);
                            log_end = seq;
                        }
                    }
                    Step::AppendWait => {
                        let seq = wal.append(&body_of(log_end + 1)).unwrap();
                        log_end = seq;
                        wal.wait_durable(seq).unwrap();
                        // Under Never, "durable" means handed to the OS: a power cut may take it.
                        if policy != FsyncPolicy::Never {
                            acked = seq;
                        }
                    }
                    Step::Sync => {
                        wal.sync().unwrap();
                        acked = log_end;
                    }
                }
            }
            if policy != FsyncPolicy::Never {
                acked = acked.max(wal.durable_seq());
            }
            match tear {
                Some(seed) => fs.crash_tearing(seed),
                None => fs.crash(),
            }
            drop(wal);
            // Peek at what the next generation will find, to check the acknowledged prefix.
            let (check, _, got) =
                open_collect(Arc::new(fs.clone()), Path::new(DIR), config.clone(), 0).unwrap();
            check.close().unwrap();
            prop_assert!(
                got.len() as u64 >= acked,
                "acknowledged {} but recovered {}", acked, got.len()
            );
            prop_assert!(got.len() as u64 <= log_end);
        }
    }
}
