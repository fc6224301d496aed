//! Which stored folder a listed server folder is: the same one, the same one under a new name,
//! or a new folder.
//!
//! A shared UIDVALIDITY alone is no proof of a rename: servers may give two folders the same
//! one (folders created in the same second; RFC 9051 allows it), and a name may be reused by a
//! new folder. The evidence, strongest first:
//! 1. the server's own folder id (RFC 8474 MAILBOXID) where it offers one: equal ids are the
//!    same folder whatever the names, different ids are different folders whatever the names;
//! 2. the name, unless both ids are known and differ;
//! 3. for a name the mirror does not know: a rename only when exactly one stored folder that was
//!    on the server at the last listing carries its UIDVALIDITY and has left its name (gone, or
//!    the name now holds a folder of another UIDVALIDITY), and no other unmatched server folder
//!    carries that UIDVALIDITY. Anything less is a new folder: it is synced from scratch (its
//!    mail matched to stored emails by content), which costs bytes but never misplaces a row.

use std::collections::HashMap;

use crate::model::ServerFolder;

/// A stored folder, as far as identity goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KnownFolder<'a> {
    pub(crate) id: i64,
    pub(crate) full_name: &'a str,
    pub(crate) uid_validity: Option<i64>,
    pub(crate) server_id: Option<&'a str>,
    /// On the server at the last listing (not marked gone).
    pub(crate) live: bool,
}

/// What one server folder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Identity {
    /// The stored folder of that id, under the same name.
    Same(i64),
    /// The stored folder of that id, under a new name.
    Renamed(i64),
    New,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Evidence {
    ServerId,
    Name,
    History,
}

type Claims = Vec<Option<(usize, Evidence)>>;

fn claim(
    claims: &mut Claims,
    claimed_by: &mut HashMap<usize, usize>,
    listed: usize,
    stored: usize,
    evidence: Evidence,
) {
    claims[listed] = Some((stored, evidence));
    claimed_by.insert(stored, listed);
}

/// One identity per server folder, in `server`'s order; no stored folder is given twice.
pub(crate) fn identify(known: &[KnownFolder<'_>], server: &[ServerFolder]) -> Vec<Identity> {
    let mut claims: Claims = vec![None; server.len()];
    let mut claimed_by: HashMap<usize, usize> = HashMap::new();
    for (listed, folder) in server.iter().enumerate() {
        let Some(id) = folder.server_id.as_deref() else {
            continue;
        };
        if let Some(stored) = known
            .iter()
            .position(|k| k.server_id == Some(id))
            .filter(|stored| !claimed_by.contains_key(stored))
        {
            claim(
                &mut claims,
                &mut claimed_by,
                listed,
                stored,
                Evidence::ServerId,
            );
        }
    }

    for (listed, folder) in server.iter().enumerate() {
        if claims[listed].is_some() {
            continue;
        }
        let same_name = known.iter().enumerate().find(|(stored, k)| {
            k.full_name == folder.full_name && !claimed_by.contains_key(stored)
        });
        if let Some((stored, k)) = same_name {
            let ids_differ = matches!(
                (k.server_id, folder.server_id.as_deref()),
                (Some(a), Some(b)) if a != b
            );
            if !ids_differ {
                claim(&mut claims, &mut claimed_by, listed, stored, Evidence::Name);
            }
        }
    }

    for listed in 0..server.len() {
        if claims[listed].is_some() {
            continue;
        }
        let folder = &server[listed];
        let Some(validity) = folder.uid_validity.map(i64::from) else {
            continue;
        };
        let rivals = server.iter().enumerate().any(|(other, f)| {
            other != listed
                && claims[other].is_none()
                && f.uid_validity.map(i64::from) == Some(validity)
        });
        if rivals {
            continue;
        }
        let candidates: Vec<usize> = known
            .iter()
            .enumerate()
            .filter(|(stored, k)| {
                k.live
                    && k.uid_validity == Some(validity)
                    && !(k.server_id.is_some() && folder.server_id.is_some())
                    && match claimed_by.get(stored) {
                        None => true,
                        // Its name now holds a folder of another UIDVALIDITY: the name was reused.
                        Some(&holder) => {
                            claims[holder].is_some_and(|(_, evidence)| evidence == Evidence::Name)
                                && server[holder]
                                    .uid_validity
                                    .is_some_and(|v| i64::from(v) != validity)
                        }
                    }
            })
            .map(|(stored, _)| stored)
            .collect();
        if let [stored] = candidates[..] {
            if let Some(holder) = claimed_by.get(&stored).copied() {
                claims[holder] = None;
            }
            claim(
                &mut claims,
                &mut claimed_by,
                listed,
                stored,
                Evidence::History,
            );
        }
    }

    claims
        .iter()
        .enumerate()
        .map(|(listed, claim)| match claim {
            None => Identity::New,
            Some((stored, _)) if known[*stored].full_name == server[listed].full_name => {
                Identity::Same(known[*stored].id)
            }
            Some((stored, _)) => Identity::Renamed(known[*stored].id),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(name: &str, validity: Option<u32>, server_id: Option<&str>) -> ServerFolder {
        ServerFolder {
            full_name: name.to_owned(),
            name: name.to_owned(),
            parent_full_name: None,
            delimiter: Some("/".to_owned()),
            folder_type: "other".to_owned(),
            selectable: true,
            uid_validity: validity,
            server_id: server_id.map(str::to_owned),
        }
    }

    fn stored<'a>(id: i64, name: &'a str, validity: i64, live: bool) -> KnownFolder<'a> {
        KnownFolder {
            id,
            full_name: name,
            uid_validity: Some(validity),
            server_id: None,
            live,
        }
    }

    #[test]
    fn a_name_that_left_with_its_uidvalidity_is_a_rename() {
        let known = [stored(1, "INBOX", 10, true), stored(2, "P", 20, true)];
        let server = [
            listed("INBOX", Some(10), None),
            listed("P2", Some(20), None),
        ];
        assert_eq!(
            identify(&known, &server),
            [Identity::Same(1), Identity::Renamed(2)]
        );
    }

    #[test]
    fn a_folder_gone_at_an_earlier_listing_is_not_taken_for_a_rename() {
        // Issue 22, case 5: P and Q share UIDVALIDITY 20; Q was deleted (kept, it holds mail);
        // then P was renamed to P2 and a new P created.
        let known = [stored(1, "P", 20, true), stored(2, "Q", 20, false)];
        let server = [listed("P", Some(30), None), listed("P2", Some(20), None)];
        assert_eq!(
            identify(&known, &server),
            [Identity::New, Identity::Renamed(1)]
        );
    }

    #[test]
    fn two_folders_that_could_be_the_rename_make_it_a_new_folder() {
        let known = [stored(1, "P", 20, true), stored(2, "Q", 20, true)];
        let server = [listed("R", Some(20), None)];
        assert_eq!(identify(&known, &server), [Identity::New]);
        let known = [stored(1, "P", 20, true)];
        let server = [listed("R", Some(20), None), listed("S", Some(20), None)];
        assert_eq!(identify(&known, &server), [Identity::New, Identity::New]);
    }

    #[test]
    fn a_reused_name_of_the_same_uidvalidity_stays_the_same_folder() {
        let known = [stored(1, "P", 20, true), stored(2, "Q", 20, true)];
        let server = [listed("P", Some(20), None), listed("Q2", Some(20), None)];
        assert_eq!(
            identify(&known, &server),
            [Identity::Same(1), Identity::Renamed(2)]
        );
    }

    #[test]
    fn server_ids_decide_over_names_and_numbers() {
        let mut p = stored(1, "P", 20, true);
        p.server_id = Some("F-p");
        let mut q = stored(2, "Q", 20, true);
        q.server_id = Some("F-q");
        // Q renamed to P after P was deleted: the ids say so, the names say otherwise.
        let server = [listed("P", Some(20), Some("F-q"))];
        assert_eq!(identify(&[p, q], &server), [Identity::Renamed(2)]);
        // A new folder under a known name, with the same UIDVALIDITY: new, by its id.
        let server = [listed("P", Some(20), Some("F-new"))];
        assert_eq!(identify(&[p], &server), [Identity::New]);
        // Unknown UIDVALIDITY: the id alone carries it.
        let server = [listed("P3", None, Some("F-p"))];
        assert_eq!(identify(&[p], &server), [Identity::Renamed(1)]);
    }

    #[test]
    fn without_a_uidvalidity_an_unknown_name_is_new() {
        let known = [stored(1, "P", 20, true)];
        let server = [listed("P2", None, None)];
        assert_eq!(identify(&known, &server), [Identity::New]);
    }
}
