//! The diesel schema, one for both backends (see migrations/postgres and migrations/sqlite).

diesel::table! {
    users (id) {
        id -> BigInt,
        email -> Text,
        name -> Text,
        enabled -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    user_capabilities (user_id, capability) {
        user_id -> BigInt,
        capability -> Text,
    }
}

diesel::table! {
    mailboxes (id) {
        id -> BigInt,
        owner_user_id -> Nullable<BigInt>,
        email -> Text,
        host -> Text,
        port -> Integer,
        security -> Text,
        imap_user -> Text,
        auth_kind -> Text,
        secret_ciphertext -> Nullable<Binary>,
        secret_key_id -> Nullable<Text>,
        oauth_settings -> Nullable<Text>,
        active -> Bool,
        sync_enabled -> Bool,
        first_sync_days -> Integer,
        sync_state -> Text,
        last_error -> Nullable<Text>,
        last_sync_started_at -> Nullable<Timestamp>,
        last_sync_finished_at -> Nullable<Timestamp>,
        last_success_at -> Nullable<Timestamp>,
        lease_holder -> Nullable<Text>,
        lease_expires_at -> Nullable<Timestamp>,
        backoff_until -> Nullable<Timestamp>,
        consecutive_failures -> Integer,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        tls_pin -> Nullable<Text>,
        sync_requested_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    folders (id) {
        id -> BigInt,
        mailbox_id -> BigInt,
        full_name -> Text,
        name -> Text,
        parent_full_name -> Nullable<Text>,
        delimiter -> Nullable<Text>,
        folder_type -> Text,
        selectable -> Bool,
        sync_enabled -> Bool,
        gone_since -> Nullable<Timestamp>,
        uid_validity -> Nullable<BigInt>,
        uid_next -> Nullable<BigInt>,
        highest_modseq -> Nullable<BigInt>,
        synced_up_to_uid -> BigInt,
        backfill_below_uid -> Nullable<BigInt>,
        window_start -> Nullable<Timestamp>,
        synchronized_at -> Nullable<Timestamp>,
        failure_count -> Integer,
        server_id -> Nullable<Text>,
    }
}

diesel::table! {
    emails (id) {
        id -> BigInt,
        mailbox_id -> BigInt,
        identity -> Text,
        message_id -> Nullable<Text>,
        subject -> Nullable<Text>,
        from_name -> Nullable<Text>,
        from_email -> Nullable<Text>,
        sender -> Nullable<Text>,
        to_addresses -> Text,
        cc_addresses -> Text,
        bcc_addresses -> Text,
        reply_to_addresses -> Text,
        sent_at -> Nullable<Timestamp>,
        received_at -> Nullable<Timestamp>,
        internal_date -> Nullable<Timestamp>,
        importance -> SmallInt,
        in_reply_to -> Nullable<Text>,
        references_ids -> Text,
        thread_id -> Text,
        gmail_message_id -> Nullable<Text>,
        gmail_thread_id -> Nullable<Text>,
        size -> Nullable<BigInt>,
        body_text -> Nullable<Text>,
        body_html -> Nullable<Text>,
        body_state -> Text,
        parse_problems -> Text,
        orphaned_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        header_key -> Nullable<Text>,
    }
}

diesel::table! {
    thread_refs (mailbox_id, message_id) {
        mailbox_id -> BigInt,
        message_id -> Text,
        thread_id -> Text,
    }
}

diesel::table! {
    attachments (id) {
        id -> BigInt,
        email_id -> BigInt,
        position -> Integer,
        name -> Nullable<Text>,
        content_type -> Text,
        size -> BigInt,
        content_id -> Nullable<Text>,
        inline -> Bool,
        content -> Nullable<Binary>,
    }
}

diesel::table! {
    memberships (id) {
        id -> BigInt,
        folder_id -> BigInt,
        uid_validity -> BigInt,
        uid -> BigInt,
        email_id -> BigInt,
        flags -> Text,
        modseq -> Nullable<BigInt>,
    }
}

diesel::table! {
    retry_uids (folder_id, uid_validity, uid) {
        folder_id -> BigInt,
        uid_validity -> BigInt,
        uid -> BigInt,
        attempts -> Integer,
        last_error -> Nullable<Text>,
        next_attempt_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    pending_flag_changes (id) {
        id -> BigInt,
        email_id -> BigInt,
        folder_id -> BigInt,
        flag -> Text,
        set_flag -> Bool,
        based_on_modseq -> Nullable<BigInt>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    dropped_flag_changes (id) {
        id -> BigInt,
        mailbox_id -> BigInt,
        folder_id -> BigInt,
        email_id -> BigInt,
        uid -> BigInt,
        change -> Text,
        reason -> Text,
        dropped_at -> Timestamp,
    }
}

diesel::table! {
    credential_episodes (id) {
        id -> BigInt,
        mailbox_id -> BigInt,
        reason -> Text,
        opened_at -> Timestamp,
        closed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    notification_outbox (id) {
        id -> BigInt,
        episode_id -> BigInt,
        user_id -> BigInt,
        channel -> Text,
        kind -> Text,
        created_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
        withdrawn_at -> Nullable<Timestamp>,
        attempts -> Integer,
        last_error -> Nullable<Text>,
        next_attempt_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    login_notices_shown (episode_id, user_id) {
        episode_id -> BigInt,
        user_id -> BigInt,
        shown_at -> Timestamp,
    }
}

diesel::table! {
    sync_runs (id) {
        id -> BigInt,
        mailbox_id -> BigInt,
        started_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
        outcome -> Text,
        message -> Nullable<Text>,
        emails_new -> BigInt,
        emails_changed -> BigInt,
        emails_removed -> BigInt,
    }
}

diesel::joinable!(user_capabilities -> users (user_id));
diesel::joinable!(mailboxes -> users (owner_user_id));
diesel::joinable!(folders -> mailboxes (mailbox_id));
diesel::joinable!(emails -> mailboxes (mailbox_id));
diesel::joinable!(attachments -> emails (email_id));
diesel::joinable!(memberships -> folders (folder_id));
diesel::joinable!(memberships -> emails (email_id));
diesel::joinable!(credential_episodes -> mailboxes (mailbox_id));
diesel::joinable!(notification_outbox -> credential_episodes (episode_id));
diesel::joinable!(notification_outbox -> users (user_id));
diesel::joinable!(sync_runs -> mailboxes (mailbox_id));
diesel::joinable!(dropped_flag_changes -> mailboxes (mailbox_id));
diesel::joinable!(dropped_flag_changes -> folders (folder_id));
diesel::joinable!(dropped_flag_changes -> emails (email_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    user_capabilities,
    mailboxes,
    folders,
    emails,
    thread_refs,
    attachments,
    memberships,
    retry_uids,
    pending_flag_changes,
    dropped_flag_changes,
    credential_episodes,
    notification_outbox,
    login_notices_shown,
    sync_runs,
);
