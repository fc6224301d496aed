//! Listing the server's folders and merging them into the mirror, with the evidence the
//! store's folder identity needs (email_model's merge: server ids, names, UIDVALIDITY history).

use email_model::{Folder as StoredFolder, ServerFolder, Store};
use imap_connector::{ConnectorError, MailServer};

use crate::convert::server_folder;
use crate::error::Result;

/// Lists the folders (with counts) and merges them into the mirror.
///
/// Where the server offers folder ids (RFC 8474), each folder the mirror cannot place by name
/// and UIDVALIDITY alone — a name it does not know, a known name whose UIDVALIDITY changed, a
/// stored folder without an id yet — is examined once for its id; other folders cost nothing.
pub(crate) async fn refresh_folders<S: Store, M: MailServer>(
    store: &S,
    server: &mut M,
    mailbox_id: i64,
) -> Result<()> {
    let listed = server.folders(true).await?;
    let known = store.folders(mailbox_id).await?;
    let mut folders: Vec<ServerFolder> = listed.iter().map(server_folder).collect();
    for folder in folders.iter_mut().filter(|f| f.selectable) {
        if !needs_server_id(&known, folder) {
            continue;
        }
        folder.server_id = match server.folder_server_id(&folder.full_name).await {
            Ok(id) => id,
            Err(error) if ends_the_session(&error) => return Err(error.into()),
            Err(error) => {
                // Without its id the folder is placed by name and history, as on any server.
                tracing::warn!(folder = %folder.full_name, %error, "could not read the folder's id");
                None
            }
        };
    }
    store.merge_folders(mailbox_id, folders).await?;
    Ok(())
}

fn needs_server_id(known: &[StoredFolder], folder: &ServerFolder) -> bool {
    match known.iter().find(|k| k.full_name == folder.full_name) {
        None => true,
        Some(stored) => {
            stored.server_id.is_none()
                || (stored.uid_validity.is_some() && stored.uid_validity != folder.uid_validity)
        }
    }
}

fn ends_the_session(error: &ConnectorError) -> bool {
    matches!(
        error,
        ConnectorError::Connection { .. } | ConnectorError::Timeout { .. } | ConnectorError::Tls(_)
    )
}
