//! Folder identity beyond UIDVALIDITY (issue 22, case 5): two folders the server gave one
//! UIDVALIDITY (set with doveadm, as servers do that number folders by the second), one deleted,
//! the other renamed and its name reused. The mirror must keep each folder's rows with that
//! folder: the renamed one keeps its row and its mail, the new one under the old name is new.

use std::collections::BTreeSet;

use email_model::Store;
use sync_core::OutcomeStatus;
use test_support::DovecotVariant;

use crate::sync::{Backend, Rig, rig_on, seed};
use crate::sync_changes::{assert_mirror, server_state, sync};

/// The Message-IDs of the emails the mirror holds in `folder`.
async fn stored_message_ids(rig: &Rig, folder: &str) -> BTreeSet<String> {
    async fn of<S: Store>(store: &S, folder_id: i64) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        for membership in store.memberships(folder_id).await.unwrap() {
            let email = store.email(membership.email_id).await.unwrap().unwrap();
            ids.insert(
                email
                    .message_id
                    .unwrap_or_default()
                    .trim_matches(['<', '>'])
                    .to_owned(),
            );
        }
        ids
    }
    let folder_id = rig
        .folders()
        .await
        .into_iter()
        .find(|f| f.full_name == folder)
        .unwrap_or_else(|| panic!("{folder} is not in the mirror"))
        .id;
    if rig.is_postgres() {
        of(&rig.pg(), folder_id).await
    } else {
        of(&rig.sqlite(), folder_id).await
    }
}

async fn a_shared_uidvalidity_does_not_hand_one_folder_s_rows_to_another(
    backend: Backend,
    variant: DovecotVariant,
) {
    let endpoint = test_support::shared_dovecot(variant).unwrap_or_else(|e| panic!("{e}"));
    let rig = rig_on(backend, endpoint, "shared-validity", 365).await;
    let mut raw = rig.raw().await;
    raw.create_folder("P").await.unwrap();
    raw.create_folder("Q").await.unwrap();
    let in_p: BTreeSet<String> = seed(&mut raw, "P", 251, 2, (1, 10))
        .await
        .into_iter()
        .collect();
    let in_q: BTreeSet<String> = seed(&mut raw, "Q", 252, 3, (1, 10))
        .await
        .into_iter()
        .collect();
    raw.command("LOGOUT").await.unwrap();
    let shared = {
        let mut raw = rig.raw().await;
        server_state(&mut raw, "P").await.0
    };
    endpoint.set_uid_validity(&rig.user, "Q", shared).unwrap();
    let mut raw = rig.raw().await;
    assert_eq!(server_state(&mut raw, "Q").await.0, shared);

    rig.sync(10).await;
    rig.switch_folder("P", true).await;
    rig.switch_folder("Q", true).await;
    assert_eq!(sync(&rig).await.0, OutcomeStatus::Success);
    assert_mirror(&rig, &mut raw, &["P", "Q"], "both synced").await;
    let p_row = rig
        .folders()
        .await
        .into_iter()
        .find(|f| f.full_name == "P")
        .unwrap()
        .id;

    // Q is deleted on the server: kept in the mirror, it holds synced mail.
    // (Dovecot ends a session whose selected folder is deleted or renamed.)
    raw.command("SELECT INBOX").await.unwrap().ok().unwrap();
    raw.command("DELETE Q").await.unwrap().ok().unwrap();
    assert_eq!(sync(&rig).await.0, OutcomeStatus::Success);
    let q = rig
        .folders()
        .await
        .into_iter()
        .find(|f| f.full_name == "Q")
        .unwrap();
    assert!(q.gone_since.is_some(), "{q:?}");

    // P becomes P2, and a new P is created with other mail.
    raw.command("SELECT INBOX").await.unwrap().ok().unwrap();
    raw.command("RENAME P P2").await.unwrap().ok().unwrap();
    raw.create_folder("P").await.unwrap();
    let in_new_p: BTreeSet<String> = seed(&mut raw, "P", 253, 1, (1, 10))
        .await
        .into_iter()
        .collect();
    assert_eq!(sync(&rig).await.0, OutcomeStatus::Success);
    rig.switch_folder("P", true).await;
    assert_eq!(sync(&rig).await.0, OutcomeStatus::Success);

    let folders = rig.folders().await;
    let p2 = folders.iter().find(|f| f.full_name == "P2").unwrap();
    assert_eq!(
        p2.id, p_row,
        "P2 is P renamed: it keeps P's row, {folders:?}"
    );
    assert!(p2.gone_since.is_none());
    assert_ne!(
        folders.iter().find(|f| f.full_name == "P").unwrap().id,
        p_row
    );
    assert!(
        folders
            .iter()
            .find(|f| f.full_name == "Q")
            .unwrap()
            .gone_since
            .is_some()
    );
    assert_mirror(&rig, &mut raw, &["P", "P2"], "after the rename").await;
    assert_eq!(
        stored_message_ids(&rig, "P2").await,
        in_p,
        "P2 holds P's mail"
    );
    assert_eq!(
        stored_message_ids(&rig, "P").await,
        in_new_p,
        "the new P holds its own"
    );
    assert_eq!(
        stored_message_ids(&rig, "Q").await,
        in_q,
        "the gone Q keeps its mail"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_shared_uidvalidity_does_not_move_rows_between_folders() {
    for variant in [DovecotVariant::Full, DovecotVariant::Minimal] {
        a_shared_uidvalidity_does_not_hand_one_folder_s_rows_to_another(Backend::Postgres, variant)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_shared_uidvalidity_does_not_move_rows_between_folders() {
    for variant in [DovecotVariant::Full, DovecotVariant::Minimal] {
        a_shared_uidvalidity_does_not_hand_one_folder_s_rows_to_another(Backend::Sqlite, variant)
            .await;
    }
}
