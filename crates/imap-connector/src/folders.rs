//! The folder tree: names decoded from modified UTF-7, attributes, types and counts.

use async_imap::imap_proto::{MailboxDatum, NameAttribute, Response, StatusAttribute};

use crate::utf7;

/// What a folder holds, from RFC 6154 attributes or, failing those, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FolderType {
    Inbox,
    Sent,
    Drafts,
    Trash,
    Junk,
    Archive,
    /// Gmail's "All Mail" and the like (`\All`).
    All,
    Other,
}

/// Counts of a folder, from LIST-STATUS or STATUS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FolderCounts {
    pub messages: Option<u32>,
    pub unseen: Option<u32>,
    pub uid_next: Option<u32>,
    pub uid_validity: Option<u32>,
    pub highest_modseq: Option<u64>,
}

/// One folder as the server lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    /// The full name, decoded (`Projects/Été 2026`).
    pub full_name: String,
    /// The last level of the full name.
    pub name: String,
    /// The full name on the wire (modified UTF-7), what SELECT takes.
    pub wire_name: String,
    pub delimiter: Option<String>,
    /// Attributes as listed, lowercased with their backslash (`\noselect`, `\sent`).
    pub attributes: Vec<String>,
    pub selectable: bool,
    pub folder_type: FolderType,
    pub counts: Option<FolderCounts>,
}

impl Folder {
    /// The full name of the parent folder, if any.
    pub fn parent(&self) -> Option<&str> {
        let delimiter = self.delimiter.as_deref()?;
        self.full_name
            .rsplit_once(delimiter)
            .map(|(parent, _)| parent)
    }
}

/// imap-proto hands quoted strings over with their escapes (`\"`, `\\`) still in.
pub(crate) fn unescape_quoted(text: &str) -> String {
    if !text.contains('\\') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Builds a folder from a LIST response.
pub(crate) fn folder_from_list(
    attributes: &[NameAttribute<'_>],
    delimiter: Option<&str>,
    wire_name: &str,
) -> Folder {
    let wire_name = unescape_quoted(wire_name);
    let wire_name = wire_name.as_str();
    let attributes: Vec<String> = attributes.iter().map(attribute_text).collect();
    let full_name = utf7::decode(wire_name);
    let name = match delimiter {
        Some(d) if !d.is_empty() => full_name.rsplit(d).next().unwrap_or(&full_name).to_owned(),
        _ => full_name.clone(),
    };
    let selectable = !attributes
        .iter()
        .any(|a| a == "\\noselect" || a == "\\nonexistent");
    let folder_type = folder_type(&attributes, &full_name, delimiter);
    Folder {
        full_name,
        name,
        wire_name: wire_name.to_owned(),
        delimiter: delimiter.map(str::to_owned),
        attributes,
        selectable,
        folder_type,
        counts: None,
    }
}

fn attribute_text(attribute: &NameAttribute<'_>) -> String {
    let text = match attribute {
        NameAttribute::NoInferiors => "\\Noinferiors".to_owned(),
        NameAttribute::NoSelect => "\\Noselect".to_owned(),
        NameAttribute::Marked => "\\Marked".to_owned(),
        NameAttribute::Unmarked => "\\Unmarked".to_owned(),
        NameAttribute::All => "\\All".to_owned(),
        NameAttribute::Archive => "\\Archive".to_owned(),
        NameAttribute::Drafts => "\\Drafts".to_owned(),
        NameAttribute::Flagged => "\\Flagged".to_owned(),
        NameAttribute::Junk => "\\Junk".to_owned(),
        NameAttribute::Sent => "\\Sent".to_owned(),
        NameAttribute::Trash => "\\Trash".to_owned(),
        NameAttribute::Extension(other) => other.to_string(),
        other => format!("{other:?}"),
    };
    // Servers differ in case (Cyrus sends `\sent`).
    text.to_ascii_lowercase()
}

/// RFC 6154 attributes first; then the name, compared without case, as a whole or as the last
/// level under an `INBOX.`/`INBOX/` prefix.
pub(crate) fn folder_type(
    attributes: &[String],
    full_name: &str,
    delimiter: Option<&str>,
) -> FolderType {
    for (attribute, folder_type) in [
        ("\\inbox", FolderType::Inbox),
        ("\\sent", FolderType::Sent),
        ("\\drafts", FolderType::Drafts),
        ("\\trash", FolderType::Trash),
        ("\\junk", FolderType::Junk),
        ("\\spam", FolderType::Junk),
        ("\\archive", FolderType::Archive),
        ("\\all", FolderType::All),
    ] {
        if attributes.iter().any(|a| a == attribute) {
            return folder_type;
        }
    }
    if full_name.eq_ignore_ascii_case("INBOX") {
        return FolderType::Inbox;
    }
    let lower = full_name.to_lowercase();
    let last_level = match delimiter {
        Some(d) if !d.is_empty() => {
            let inbox_prefix = format!("inbox{d}");
            match lower.strip_prefix(&inbox_prefix) {
                Some(rest) if !rest.contains(d) => rest.to_owned(),
                _ => lower.clone(),
            }
        }
        _ => lower.clone(),
    };
    let last_level = last_level.strip_prefix("[gmail]/").unwrap_or(&last_level);
    NAMES
        .iter()
        .find(|(_, names)| names.contains(&last_level))
        .map_or(FolderType::Other, |(folder_type, _)| *folder_type)
}

/// Oro's name table, plus the common localized names and Gmail's.
const NAMES: &[(FolderType, &[&str])] = &[
    (
        FolderType::Inbox,
        &["inbox", "posteingang", "boîte de réception", "входящие"],
    ),
    (
        FolderType::Sent,
        &[
            "sent",
            "sentbox",
            "sent items",
            "sent messages",
            "sent mail",
            "gesendet",
            "gesendete objekte",
            "gesendete elemente",
            "envoyés",
            "éléments envoyés",
            "enviados",
            "elementos enviados",
            "inviati",
            "posta inviata",
            "verzonden",
            "verzonden items",
            "отправленные",
            "wysłane",
            "skickat",
            "skickade objekt",
            "sendt",
            "lähetetyt",
        ],
    ),
    (
        FolderType::Drafts,
        &[
            "drafts",
            "draft",
            "entwürfe",
            "brouillons",
            "borradores",
            "bozze",
            "concepten",
            "черновики",
            "kopie robocze",
            "utkast",
            "kladder",
            "luonnokset",
        ],
    ),
    (
        FolderType::Trash,
        &[
            "trash",
            "deleted",
            "deleted items",
            "deleted messages",
            "bin",
            "papierkorb",
            "gelöschte objekte",
            "gelöschte elemente",
            "corbeille",
            "éléments supprimés",
            "papelera",
            "elementos eliminados",
            "cestino",
            "posta eliminata",
            "prullenbak",
            "verwijderde items",
            "корзина",
            "удаленные",
            "kosz",
            "papperskorgen",
            "papirkurv",
            "roskakori",
        ],
    ),
    (
        FolderType::Junk,
        &[
            "junk",
            "spam",
            "junk e-mail",
            "junk email",
            "bulk mail",
            "spamverdacht",
            "junk-e-mail",
            "courrier indésirable",
            "indésirables",
            "correo no deseado",
            "posta indesiderata",
            "ongewenste e-mail",
            "спам",
            "нежелательная почта",
            "skräppost",
            "uønsket e-post",
            "roskaposti",
        ],
    ),
    (
        FolderType::Archive,
        &[
            "archive",
            "archives",
            "archiv",
            "archivo",
            "archivio",
            "archief",
            "архив",
        ],
    ),
    (
        FolderType::All,
        &["all mail", "alle nachrichten", "tous les messages", "todos"],
    ),
];

/// Reads the counts from a STATUS response into `counts`.
pub(crate) fn apply_status(counts: &mut FolderCounts, attributes: &[StatusAttribute]) {
    for attribute in attributes {
        match attribute {
            StatusAttribute::Messages(n) => counts.messages = Some(*n),
            StatusAttribute::Unseen(n) => counts.unseen = Some(*n),
            StatusAttribute::UidNext(n) => counts.uid_next = Some(*n),
            StatusAttribute::UidValidity(n) => counts.uid_validity = Some(*n),
            StatusAttribute::HighestModSeq(n) => counts.highest_modseq = Some(*n),
            _ => {}
        }
    }
}

/// A LIST or STATUS response, owned, as the folder listing collects them.
pub(crate) enum ListItem {
    Folder(Folder),
    Status {
        wire_name: String,
        counts: FolderCounts,
    },
}

pub(crate) fn list_item(response: &Response<'_>) -> Option<ListItem> {
    match response {
        Response::MailboxData(MailboxDatum::List(list)) => Some(ListItem::Folder(
            folder_from_list(&list.name_attributes, list.delimiter.as_deref(), &list.name),
        )),
        Response::MailboxData(MailboxDatum::Status { mailbox, status }) => {
            let mut counts = FolderCounts::default();
            apply_status(&mut counts, status);
            Some(ListItem::Status {
                wire_name: unescape_quoted(mailbox),
                counts,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(attributes: &[&str], name: &str, delimiter: &str) -> FolderType {
        let attributes: Vec<String> = attributes.iter().map(|a| a.to_ascii_lowercase()).collect();
        folder_type(&attributes, name, Some(delimiter))
    }

    #[test]
    fn types_come_from_attributes_then_names() {
        assert_eq!(kind(&["\\sent"], "Whatever", "/"), FolderType::Sent);
        assert_eq!(
            kind(&["\\HasNoChildren", "\\Junk"], "Spamfolder", "/"),
            FolderType::Junk
        );
        assert_eq!(kind(&[], "inbox", "/"), FolderType::Inbox);
        assert_eq!(kind(&[], "INBOX.Sent", "."), FolderType::Sent);
        assert_eq!(kind(&[], "INBOX.Projects.Sent", "."), FolderType::Other);
        assert_eq!(kind(&[], "Gesendete Objekte", "/"), FolderType::Sent);
        assert_eq!(kind(&[], "Отправленные", "/"), FolderType::Sent);
        assert_eq!(kind(&[], "Junk E-mail", "/"), FolderType::Junk);
        assert_eq!(kind(&[], "[Gmail]/All Mail", "/"), FolderType::All);
        assert_eq!(kind(&[], "Deleted Items", "/"), FolderType::Trash);
        assert_eq!(kind(&[], "Projects", "/"), FolderType::Other);
    }
}
