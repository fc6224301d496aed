//! What a server can do, as typed flags: callers branch on fields, never on capability strings.

use std::collections::BTreeSet;

/// The extensions the sync engine adapts to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features {
    /// RFC 7162 CONDSTORE: MODSEQs, CHANGEDSINCE, UNCHANGEDSINCE.
    pub condstore: bool,
    /// RFC 7162 QRESYNC: VANISHED, SELECT … (QRESYNC …).
    pub qresync: bool,
    /// RFC 2177 IDLE.
    pub idle: bool,
    /// RFC 6851 MOVE.
    pub moves: bool,
    /// RFC 4315 UIDPLUS.
    pub uidplus: bool,
    /// RFC 8474 OBJECTID: folder and message ids.
    pub objectid: bool,
}

impl Features {
    /// From a capability list as [`crate::ImapConnector::capabilities`] returns it (uppercase).
    pub fn of(capabilities: &BTreeSet<String>) -> Self {
        let has = |name: &str| capabilities.contains(name);
        Self {
            condstore: has("CONDSTORE") || has("QRESYNC"),
            qresync: has("QRESYNC"),
            idle: has("IDLE"),
            moves: has("MOVE"),
            uidplus: has("UIDPLUS"),
            objectid: has("OBJECTID"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qresync_implies_condstore() {
        let listed: BTreeSet<String> = ["IMAP4REV1", "QRESYNC", "IDLE"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        let features = Features::of(&listed);
        assert!(features.qresync && features.condstore && features.idle);
        assert!(!features.moves && !features.objectid);
        assert_eq!(Features::of(&BTreeSet::new()), Features::default());
    }
}
