//! From what the connector fetched to what the model stores.

use email_model::{Address, BodyState, NewAttachment, NewEmail, ServerFolder};
use imap_connector::{Body, FetchedMessage, Folder, FolderType, Importance, ParseProblem};

pub(crate) fn folder_type_name(folder_type: FolderType) -> &'static str {
    match folder_type {
        FolderType::Inbox => "inbox",
        FolderType::Sent => "sent",
        FolderType::Drafts => "drafts",
        FolderType::Trash => "trash",
        FolderType::Junk => "junk",
        FolderType::Archive => "archive",
        FolderType::All => "all",
        FolderType::Other => "other",
    }
}

pub(crate) fn server_folder(folder: &Folder) -> ServerFolder {
    ServerFolder {
        full_name: folder.full_name.clone(),
        name: folder.name.clone(),
        parent_full_name: folder.parent().map(str::to_owned),
        delimiter: folder.delimiter.clone(),
        folder_type: folder_type_name(folder.folder_type).to_owned(),
        selectable: folder.selectable,
        uid_validity: folder.counts.and_then(|c| c.uid_validity),
        server_id: None,
    }
}

fn address(address: &imap_connector::Address) -> Address {
    Address {
        name: address.name.clone(),
        email: address.email.clone(),
    }
}

fn problem_text(problem: &ParseProblem) -> String {
    match problem {
        ParseProblem::MissingMessageId => "missing Message-ID".to_owned(),
        ParseProblem::BadDate(date) => format!("unreadable Date: {date}"),
        ParseProblem::MissingDate => "missing Date".to_owned(),
        ParseProblem::Undecodable { part } => format!("undecodable {part}"),
        ParseProblem::UnknownCharset { part, charset } => {
            format!("unknown charset {charset} in {part}")
        }
        ParseProblem::UnterminatedMultipart { boundary } => {
            format!("multipart {boundary} never closed")
        }
        ParseProblem::Unparsable => "unparsable message".to_owned(),
    }
}

pub(crate) fn new_email(message: FetchedMessage) -> NewEmail {
    let headers = message.headers;
    let (body_text, body_html, attachments, body_state) = match message.body {
        Body::Parsed {
            text,
            html,
            attachments,
        } => (
            text,
            html,
            attachments
                .into_iter()
                .map(|a| NewAttachment {
                    name: a.name,
                    content_type: a.content_type,
                    size: a.size,
                    content_id: a.content_id,
                    inline: a.inline,
                    content: a.content,
                })
                .collect(),
            BodyState::Stored,
        ),
        Body::TooLarge { .. } => (None, None, Vec::new(), BodyState::TooLarge),
        _ => (None, None, Vec::new(), BodyState::HeadersOnly),
    };
    let mut email = NewEmail {
        uid: message.uid,
        flags: message.flags,
        modseq: message.modseq,
        message_id: headers.message_id,
        subject: headers.subject,
        from: headers.from.first().map(address),
        sender: headers.sender.as_ref().map(address),
        to: headers.to.iter().map(address).collect(),
        cc: headers.cc.iter().map(address).collect(),
        bcc: headers.bcc.iter().map(address).collect(),
        reply_to: headers.reply_to.iter().map(address).collect(),
        sent_at: headers.date,
        internal_date: message.internal_date,
        importance: match headers.importance {
            Importance::Low => -1,
            Importance::High => 1,
            _ => 0,
        },
        in_reply_to: headers.in_reply_to,
        references: headers.references,
        gmail_message_id: message.gmail.message_id,
        gmail_thread_id: message.gmail.thread_id,
        email_id: message.email_id,
        size: message.size,
        body_text,
        body_html,
        body_state,
        attachments,
        parse_problems: message.problems.iter().map(problem_text).collect(),
        content: Some(email_model::identity::ContentKey {
            header_digest: message.content.header_digest,
            body_size: message.content.body_size,
            body_digest: message.content.body_digest,
        }),
    };
    // Before the identity is taken from it: the store and a UIDVALIDITY remap see the same text.
    email_model::rules::make_storable(&mut email);
    email
}
