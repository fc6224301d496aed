//! The seeded randomized scenario test (issue 22): a generator of operation sequences —
//! appends, flag changes and expunges by a second client, moves and copies between two
//! folders, the host's flag changes through `pending_flag_changes`, UIDVALIDITY changes, syncs —
//! run against the real Dovecot on both backends. After every sync the mirror must equal the
//! server (checked through the raw client), and the host's changes that no server-side change
//! could have overridden must be on the server. On failure it prints the seed and the shortest
//! failing prefix it finds. `cargo xtask chaos --seed S --ops N` runs longer ones.

use std::collections::BTreeMap;

use futures::FutureExt as _;
use sync_core::OutcomeStatus;
use test_support::{DovecotVariant, RawImap};

use crate::sync::{Backend, Rig, rig_on, seed};
use crate::sync_changes::{
    assert_mirror_of, move_message, record_local_change, recreate_with_same_mail, server_state,
    sync,
};

const FOLDERS: [&str; 2] = ["INBOX", "Chaos"];
const FLAGS: [&str; 4] = ["\\Seen", "\\Flagged", "$Label1", "\\Answered"];

/// Picks from the rig's seeded generator.
struct Rng(test_support::SplitMix64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0.below(n as u64) as usize
    }
}

#[derive(Debug, Clone)]
enum Op {
    Append {
        folder: usize,
    },
    ServerFlag {
        folder: usize,
        pick: usize,
        flag: usize,
        set: bool,
    },
    Expunge {
        folder: usize,
        pick: usize,
    },
    Move {
        from: usize,
        pick: usize,
    },
    Copy {
        from: usize,
        pick: usize,
    },
    HostFlag {
        folder: usize,
        pick: usize,
        flag: usize,
        set: bool,
    },
    Recreate {
        folder: usize,
    },
    Sync,
}

fn generate(seed: u64, count: usize) -> Vec<Op> {
    let mut rng = Rng(test_support::SplitMix64(seed));
    let mut ops = Vec::with_capacity(count + 1);
    for _ in 0..count {
        let folder = rng.below(2);
        let pick = rng.below(64);
        let flag = rng.below(FLAGS.len());
        let set = rng.below(2) == 0;
        ops.push(match rng.below(20) {
            0..=3 => Op::Append { folder },
            4..=6 => Op::ServerFlag {
                folder,
                pick,
                flag,
                set,
            },
            7 | 8 => Op::Expunge { folder, pick },
            9 => Op::Move { from: folder, pick },
            10 => Op::Copy { from: folder, pick },
            11..=14 => Op::HostFlag {
                folder,
                pick,
                flag,
                set,
            },
            15 => Op::Recreate { folder: 1 },
            _ => Op::Sync,
        });
    }
    ops.push(Op::Sync);
    ops
}

async fn uids(raw: &mut RawImap, folder: &str) -> Vec<u32> {
    server_state(raw, folder).await.1.into_keys().collect()
}

/// Runs `ops` on a fresh mailbox; panics (with the step) where the mirror and the server part.
async fn run(backend: Backend, seed_value: u64, ops: &[Op]) {
    let endpoint =
        test_support::shared_dovecot(DovecotVariant::Full).unwrap_or_else(|e| panic!("{e}"));
    let rig: Rig = rig_on(backend, endpoint, "chaos", 365).await;
    let mut raw = rig.raw().await;
    raw.create_folder("Chaos").await.unwrap();
    seed(&mut raw, "INBOX", seed_value, 3, (1, 30)).await;
    seed(&mut raw, "Chaos", seed_value + 1, 3, (1, 30)).await;
    rig.sync(10).await;
    rig.switch_folder("Chaos", true).await;
    assert_eq!(sync(&rig).await.0, OutcomeStatus::Success);
    let mut ids: BTreeMap<String, BTreeMap<u32, i64>> =
        assert_mirror_of(&rig, &mut raw, &FOLDERS, "start", false).await;
    // Host changes no server-side change of their folder can have overridden: none since the
    // last sync (the host's change is based on what the mirror saw then) and none after it.
    let mut expected: Vec<(usize, u32, &str, bool)> = Vec::new();
    let mut changed_since_sync = [false; 2];
    let mut appended = 0u64;
    for (step, op) in ops.iter().enumerate() {
        let at = format!("seed {seed_value}, step {step} ({op:?})");
        let mut touch = |expected: &mut Vec<(usize, u32, &str, bool)>, folder: usize| {
            expected.retain(|(f, ..)| *f != folder);
            changed_since_sync[folder] = true;
        };
        match op {
            Op::Append { folder } => {
                appended += 1;
                seed(
                    &mut raw,
                    FOLDERS[*folder],
                    seed_value * 1000 + appended,
                    1,
                    (0, 5),
                )
                .await;
            }
            Op::ServerFlag {
                folder,
                pick,
                flag,
                set,
            } => {
                let list = uids(&mut raw, FOLDERS[*folder]).await;
                if let Some(uid) = list.get(pick % list.len().max(1)) {
                    let sign = if *set { '+' } else { '-' };
                    raw.command(&format!(
                        "UID STORE {uid} {sign}FLAGS.SILENT ({})",
                        FLAGS[*flag]
                    ))
                    .await
                    .unwrap()
                    .ok()
                    .unwrap();
                    touch(&mut expected, *folder);
                }
            }
            Op::Expunge { folder, pick } => {
                let list = uids(&mut raw, FOLDERS[*folder]).await;
                if let Some(uid) = list.get(pick % list.len().max(1)) {
                    raw.command(&format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)"))
                        .await
                        .unwrap()
                        .ok()
                        .unwrap();
                    raw.command(&format!("UID EXPUNGE {uid}"))
                        .await
                        .unwrap()
                        .ok()
                        .unwrap();
                    touch(&mut expected, *folder);
                }
            }
            Op::Move { from, pick } | Op::Copy { from, pick } => {
                let list = uids(&mut raw, FOLDERS[*from]).await;
                if let Some(uid) = list.get(pick % list.len().max(1)) {
                    let to = FOLDERS[1 - from];
                    if matches!(op, Op::Move { .. }) {
                        move_message(&mut raw, FOLDERS[*from], to, *uid, true).await;
                    } else {
                        raw.command(&format!("UID COPY {uid} {to}"))
                            .await
                            .unwrap()
                            .ok()
                            .unwrap();
                    }
                    touch(&mut expected, *from);
                    touch(&mut expected, 1 - from);
                }
            }
            Op::HostFlag {
                folder,
                pick,
                flag,
                set,
            } => {
                let known = &ids[FOLDERS[*folder]];
                if let Some((uid, email)) = known.iter().nth(pick % known.len().max(1)) {
                    record_local_change(&rig, FOLDERS[*folder], *email, FLAGS[*flag], *set).await;
                    expected.retain(|(f, u, fl, _)| {
                        !(*f == *folder && u == uid && *fl == FLAGS[*flag])
                    });
                    if !changed_since_sync[*folder] {
                        expected.push((*folder, *uid, FLAGS[*flag], *set));
                    }
                }
            }
            Op::Recreate { folder } => {
                recreate_with_same_mail(&mut raw, FOLDERS[*folder]).await;
                touch(&mut expected, *folder);
            }
            Op::Sync => {
                changed_since_sync = [false; 2];
                let (status, _) = sync(&rig).await;
                assert_eq!(status, OutcomeStatus::Success, "{at}");
                // Copies of one message in one folder are one email: no one-email-per-UID rule.
                ids = assert_mirror_of(&rig, &mut raw, &FOLDERS, &at, false).await;
                for (folder, uid, flag, set) in expected.drain(..) {
                    let on_server = server_state(&mut raw, FOLDERS[folder]).await.1;
                    if let Some(flags) = on_server.get(&uid) {
                        assert_eq!(
                            flags.iter().any(|f| f.eq_ignore_ascii_case(flag)),
                            set,
                            "{at}: the host's change {flag}={set} on {} UID {uid} is not on the server: {flags:?}",
                            FOLDERS[folder]
                        );
                    }
                }
            }
        }
    }
}

/// Runs `seed`; on failure finds the shortest failing prefix, prints it and the seed, fails.
async fn check(backend: Backend, seed_value: u64, count: usize) {
    let ops = generate(seed_value, count);
    let whole = std::panic::AssertUnwindSafe(run(backend, seed_value, &ops))
        .catch_unwind()
        .await;
    let Err(failure) = whole else {
        return;
    };
    let message = |payload: &(dyn std::any::Any + Send)| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default()
    };
    let mut shortest = (ops.len(), message(failure.as_ref()));
    for length in 1..ops.len() {
        let mut prefix = ops[..length].to_vec();
        prefix.push(Op::Sync);
        let attempt = std::panic::AssertUnwindSafe(run(backend, seed_value, &prefix))
            .catch_unwind()
            .await;
        if let Err(failure) = attempt {
            shortest = (length, message(failure.as_ref()));
            break;
        }
    }
    panic!(
        "chaos {backend:?} seed {seed_value}: fails after {} of {} operations (then a sync): {:?}\n{}",
        shortest.0,
        ops.len(),
        &ops[..shortest.0.min(ops.len())],
        shortest.1
    );
}

/// The fixed seeds CI runs.
const SEEDS: [u64; 3] = [1, 2, 3];
const OPERATIONS: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_seeds_converge_on_postgres() {
    for seed_value in SEEDS {
        check(Backend::Postgres, seed_value, OPERATIONS).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_seeds_converge_on_sqlite() {
    for seed_value in SEEDS {
        check(Backend::Sqlite, seed_value, OPERATIONS).await;
    }
}

/// `cargo xtask chaos --seed S --ops N` sets `IMAP_SYNC_CHAOS_SEED` and `IMAP_SYNC_CHAOS_OPS`;
/// without them this runs seed 4 with 30 operations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_from_the_environment_converges() {
    let number = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (seed_value, count) = (
        number("IMAP_SYNC_CHAOS_SEED", 4),
        number("IMAP_SYNC_CHAOS_OPS", 30),
    );
    for backend in [Backend::Sqlite, Backend::Postgres] {
        check(backend, seed_value, count as usize).await;
    }
}
