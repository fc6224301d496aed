//! The host's flag changes (issue 22, cases 1–3): two changes on one message in one go, a
//! change after a UIDVALIDITY change, and a change to an email with two copies in one folder
//! all reach the server, checked through the raw client on both backends.

use std::collections::BTreeMap;

use sync_core::OutcomeStatus;
use test_support::DovecotVariant;

use crate::sync::{Backend, Rig, rig_on, seed};
use crate::sync_changes::{
    assert_mirror, record_local_change, recreate_with_same_mail, server_state, sync,
};

async fn rig(backend: Backend, purpose: &str) -> Rig {
    let endpoint =
        test_support::shared_dovecot(DovecotVariant::Full).unwrap_or_else(|e| panic!("{e}"));
    rig_on(backend, endpoint, purpose, 365).await
}

/// INBOX UID → email id as the mirror holds it.
async fn inbox_ids(rig: &Rig, raw: &mut test_support::RawImap) -> BTreeMap<u32, i64> {
    assert_mirror(rig, raw, &["INBOX"], "ids")
        .await
        .remove("INBOX")
        .unwrap_or_default()
}

async fn flags_on_server(raw: &mut test_support::RawImap, uid: u32) -> Vec<String> {
    server_state(raw, "INBOX")
        .await
        .1
        .remove(&uid)
        .unwrap_or_default()
}

async fn two_changes_in_one_go_both_reach_the_server(backend: Backend) {
    let rig = rig(backend, "two-changes").await;
    let mut raw = rig.raw().await;
    seed(&mut raw, "INBOX", 221, 2, (1, 10)).await;
    raw.command("SELECT INBOX").await.unwrap().ok().unwrap();
    raw.command("UID STORE 1:2 +FLAGS.SILENT (\\Seen)")
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(sync(&rig).await.0, OutcomeStatus::Success);
    let ids = inbox_ids(&rig, &mut raw).await;
    // "Star and mark unread", both based on the same MODSEQ.
    record_local_change(&rig, "INBOX", ids[&1], "\\Flagged", true).await;
    record_local_change(&rig, "INBOX", ids[&1], "\\Seen", false).await;
    // Set, then undo and set another: the net effect is the other only.
    record_local_change(&rig, "INBOX", ids[&2], "\\Flagged", true).await;
    record_local_change(&rig, "INBOX", ids[&2], "\\Flagged", false).await;
    record_local_change(&rig, "INBOX", ids[&2], "$Important", true).await;
    let before = server_state(&mut raw, "INBOX").await.1;
    let expected = |uid: u32, add: &str, remove: &str| {
        let mut flags: Vec<String> = before[&uid]
            .iter()
            .filter(|f| *f != remove && *f != add)
            .cloned()
            .collect();
        flags.push(add.to_owned());
        flags.sort();
        flags
    };
    assert_eq!(sync(&rig).await.0, OutcomeStatus::Success);
    assert_eq!(
        flags_on_server(&mut raw, 1).await,
        expected(1, "\\Flagged", "\\Seen")
    );
    assert_eq!(
        flags_on_server(&mut raw, 2).await,
        expected(2, "$Important", "\\Flagged")
    );
    assert_mirror(&rig, &mut raw, &["INBOX"], "after the push").await;
}

async fn a_change_after_a_uidvalidity_change_reaches_the_server(backend: Backend) {
    let rig = rig(backend, "rekeyed-change").await;
    let mut raw = rig.raw().await;
    raw.create_folder("Work").await.unwrap();
    seed(&mut raw, "Work", 222, 2, (1, 10)).await;
    rig.sync(10).await;
    rig.switch_folder("Work", true).await;
    assert_eq!(sync(&rig).await.0, OutcomeStatus::Success);
    recreate_with_same_mail(&mut raw, "Work").await;
    assert_eq!(sync(&rig).await.0, OutcomeStatus::Success);
    let ids = assert_mirror(&rig, &mut raw, &["Work"], "re-keyed")
        .await
        .remove("Work")
        .unwrap_or_default();
    record_local_change(&rig, "Work", ids[&1], "\\Flagged", true).await;
    assert_eq!(sync(&rig).await.0, OutcomeStatus::Success);
    let on_server = server_state(&mut raw, "Work").await.1;
    assert!(
        on_server[&1].contains(&"\\Flagged".to_owned()),
        "{on_server:?}"
    );
    assert_mirror(&rig, &mut raw, &["Work"], "after the push").await;
}

async fn a_change_reaches_every_copy_in_a_folder(backend: Backend) {
    let rig = rig(backend, "two-copies").await;
    let mut raw = rig.raw().await;
    seed(&mut raw, "INBOX", 223, 1, (1, 10)).await;
    raw.command("SELECT INBOX").await.unwrap().ok().unwrap();
    raw.command("UID COPY 1 INBOX").await.unwrap().ok().unwrap();
    assert_eq!(sync(&rig).await.0, OutcomeStatus::Success);
    let ids: BTreeMap<u32, i64> = {
        // The two copies are one email: assert_mirror's one-email-per-UID rule does not hold.
        let (_, stored) = server_state(&mut raw, "INBOX").await;
        assert_eq!(stored.len(), 2);
        let folder = rig
            .folders()
            .await
            .into_iter()
            .find(|f| f.full_name == "INBOX")
            .unwrap();
        let memberships = if rig.is_postgres() {
            email_model::Store::memberships(&rig.pg(), folder.id)
                .await
                .unwrap()
        } else {
            email_model::Store::memberships(&rig.sqlite(), folder.id)
                .await
                .unwrap()
        };
        memberships
            .into_iter()
            .map(|m| (m.uid, m.email_id))
            .collect()
    };
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[&1], ids[&2], "one message twice is one email");
    // Each copy in turn is changed on the server first, so their MODSEQs differ either way
    // (found by the randomized test: a change based on one copy's MODSEQ was taken for a
    // conflict on the other, newer copy and dropped).
    for (newer, flag) in [(2, "\\Flagged"), (1, "$Important")] {
        raw.command(&format!("UID STORE {newer} +FLAGS.SILENT ($Label{newer})"))
            .await
            .unwrap()
            .ok()
            .unwrap();
        assert_eq!(sync(&rig).await.0, OutcomeStatus::Success);
        record_local_change(&rig, "INBOX", ids[&1], flag, true).await;
        assert_eq!(sync(&rig).await.0, OutcomeStatus::Success);
        for uid in [1, 2] {
            assert!(
                flags_on_server(&mut raw, uid)
                    .await
                    .contains(&flag.to_owned()),
                "{flag} on UID {uid}"
            );
        }
    }
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Postgres).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Sqlite).await;
                }
            )*
        }
    };
}

on_both_backends!(
    two_changes_in_one_go_both_reach_the_server,
    a_change_after_a_uidvalidity_change_reaches_the_server,
    a_change_reaches_every_copy_in_a_folder,
);
