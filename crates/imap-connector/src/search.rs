//! The search query builder: a tree of criteria, compiled to IMAP SEARCH criteria or, on Gmail,
//! to an `X-GM-RAW` string.
//!
//! ```
//! use imap_connector::SearchQuery;
//! let query = SearchQuery::new()
//!     .from("alice@example.test")
//!     .any([SearchQuery::new().subject("invoice"), SearchQuery::new().subject("receipt")]);
//! assert_eq!(query.to_imap().criteria, "FROM alice@example.test OR SUBJECT invoice SUBJECT receipt");
//! ```

use chrono::NaiveDate;

/// One condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Criterion {
    From(String),
    To(String),
    Cc(String),
    Bcc(String),
    /// In To, Cc or Bcc.
    Participants(String),
    Subject(String),
    Body(String),
    /// Anywhere in the header or body.
    Text(String),
    Header(String, String),
    SentSince(NaiveDate),
    SentBefore(NaiveDate),
    ReceivedSince(NaiveDate),
    ReceivedBefore(NaiveDate),
    Seen,
    Unseen,
    Flagged,
    Unflagged,
    Answered,
    Unanswered,
    Deleted,
    Undeleted,
    Keyword(String),
    /// UIDs in these inclusive ranges (`u32::MAX` as the end stands for `*`).
    Uids(Vec<(u32, u32)>),
    Larger(u32),
    Smaller(u32),
    All,
    And(Vec<Criterion>),
    Or(Vec<Criterion>),
    Not(Box<Criterion>),
}

/// A query under construction: every call adds a condition, joined by AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchQuery {
    terms: Vec<Criterion>,
}

macro_rules! text_terms {
    ($($method:ident => $variant:ident),* $(,)?) => {
        $(
            pub fn $method(self, value: impl Into<String>) -> Self {
                self.with(Criterion::$variant(value.into()))
            }
        )*
    };
}

impl SearchQuery {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds any condition.
    pub fn with(mut self, criterion: Criterion) -> Self {
        self.terms.push(criterion);
        self
    }

    text_terms!(
        from => From, to => To, cc => Cc, bcc => Bcc, participants => Participants,
        subject => Subject, body => Body, text => Text, keyword => Keyword,
    );

    pub fn header(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.with(Criterion::Header(name.into(), value.into()))
    }

    /// Sent (the Date header) on or after `since` and before `before`.
    pub fn sent(self, since: Option<NaiveDate>, before: Option<NaiveDate>) -> Self {
        let query = match since {
            Some(date) => self.with(Criterion::SentSince(date)),
            None => self,
        };
        match before {
            Some(date) => query.with(Criterion::SentBefore(date)),
            None => query,
        }
    }

    /// Received (INTERNALDATE) on or after `since` and before `before`.
    pub fn received(self, since: Option<NaiveDate>, before: Option<NaiveDate>) -> Self {
        let query = match since {
            Some(date) => self.with(Criterion::ReceivedSince(date)),
            None => self,
        };
        match before {
            Some(date) => query.with(Criterion::ReceivedBefore(date)),
            None => query,
        }
    }

    pub fn seen(self, seen: bool) -> Self {
        self.with(if seen {
            Criterion::Seen
        } else {
            Criterion::Unseen
        })
    }

    pub fn flagged(self, flagged: bool) -> Self {
        self.with(if flagged {
            Criterion::Flagged
        } else {
            Criterion::Unflagged
        })
    }

    pub fn answered(self, answered: bool) -> Self {
        self.with(if answered {
            Criterion::Answered
        } else {
            Criterion::Unanswered
        })
    }

    pub fn deleted(self, deleted: bool) -> Self {
        self.with(if deleted {
            Criterion::Deleted
        } else {
            Criterion::Undeleted
        })
    }

    /// UIDs from `first` to `last` (`None`: to the highest, `*`).
    pub fn uids(self, first: u32, last: Option<u32>) -> Self {
        self.with(Criterion::Uids(vec![(first, last.unwrap_or(u32::MAX))]))
    }

    pub fn larger(self, bytes: u32) -> Self {
        self.with(Criterion::Larger(bytes))
    }

    pub fn smaller(self, bytes: u32) -> Self {
        self.with(Criterion::Smaller(bytes))
    }

    /// At least one of the given queries holds.
    pub fn any(self, alternatives: impl IntoIterator<Item = SearchQuery>) -> Self {
        let alternatives: Vec<Criterion> = alternatives
            .into_iter()
            .map(SearchQuery::into_criterion)
            .collect();
        match alternatives.len() {
            0 => self,
            1 => self.with(alternatives.into_iter().next().expect("one")),
            _ => self.with(Criterion::Or(alternatives)),
        }
    }

    /// The given query does not hold.
    pub fn not(self, query: SearchQuery) -> Self {
        self.with(Criterion::Not(Box::new(query.into_criterion())))
    }

    /// The query as one criterion (an AND of its terms).
    pub fn into_criterion(self) -> Criterion {
        match self.terms.len() {
            0 => Criterion::All,
            1 => self.terms.into_iter().next().expect("one"),
            _ => Criterion::And(self.terms),
        }
    }

    /// Standard IMAP SEARCH criteria; non-ASCII values as non-synchronizing literals
    /// (LITERAL+).
    pub fn to_imap(&self) -> CompiledSearch {
        self.compile(true)
    }

    /// Standard IMAP SEARCH criteria; with `literal_plus` false, non-ASCII values are sent as
    /// quoted UTF-8 strings instead of literals.
    pub fn compile(&self, literal_plus: bool) -> CompiledSearch {
        let mut out = CompiledSearch::default();
        let mut context = Context {
            needs_utf8: false,
            literal_plus,
        };
        let terms: Vec<String> = if self.terms.is_empty() {
            vec!["ALL".to_owned()]
        } else {
            self.terms.iter().map(|t| imap(t, &mut context)).collect()
        };
        out.criteria = terms.join(" ");
        out.needs_utf8 = context.needs_utf8;
        out
    }

    /// Gmail's search syntax for `X-GM-RAW`, when every condition has a Gmail equivalent.
    pub fn to_gmail_raw(&self) -> Option<String> {
        let terms: Option<Vec<String>> = self.terms.iter().map(gmail).collect();
        let terms = terms?;
        Some(if terms.is_empty() {
            String::new()
        } else {
            terms.join(" ")
        })
    }
}

/// Compiled IMAP criteria; `needs_utf8` when a value is not ASCII (then `CHARSET UTF-8` goes
/// before the criteria and such values are sent as literals).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompiledSearch {
    pub criteria: String,
    pub needs_utf8: bool,
}

struct Context {
    needs_utf8: bool,
    literal_plus: bool,
}

/// A value as an IMAP astring: bare when it is a plain atom, quoted otherwise, a literal
/// (`{n+}\r\n…`, LITERAL+) when it is not ASCII and the server takes them.
fn astring(value: &str, context: &mut Context) -> String {
    if !value.is_ascii() || value.contains(['\r', '\n']) {
        context.needs_utf8 |= !value.is_ascii();
        if context.literal_plus {
            return format!("{{{}+}}\r\n{value}", value.len());
        }
    }
    let atom = !value.is_empty()
        && value
            .bytes()
            .all(|b| b > b' ' && b < 0x7f && !b"(){%*\"\\]".contains(&b));
    if atom {
        value.to_owned()
    } else {
        format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

fn date(date: NaiveDate) -> String {
    date.format("%-d-%b-%Y").to_string()
}

fn imap(criterion: &Criterion, utf8: &mut Context) -> String {
    use Criterion::*;
    match criterion {
        From(v) => format!("FROM {}", astring(v, utf8)),
        To(v) => format!("TO {}", astring(v, utf8)),
        Cc(v) => format!("CC {}", astring(v, utf8)),
        Bcc(v) => format!("BCC {}", astring(v, utf8)),
        Participants(v) => {
            let v = astring(v, utf8);
            format!("OR TO {v} OR CC {v} BCC {v}")
        }
        Subject(v) => format!("SUBJECT {}", astring(v, utf8)),
        Body(v) => format!("BODY {}", astring(v, utf8)),
        Text(v) => format!("TEXT {}", astring(v, utf8)),
        Header(name, value) => format!("HEADER {} {}", astring(name, utf8), astring(value, utf8)),
        SentSince(d) => format!("SENTSINCE {}", date(*d)),
        SentBefore(d) => format!("SENTBEFORE {}", date(*d)),
        ReceivedSince(d) => format!("SINCE {}", date(*d)),
        ReceivedBefore(d) => format!("BEFORE {}", date(*d)),
        Seen => "SEEN".into(),
        Unseen => "UNSEEN".into(),
        Flagged => "FLAGGED".into(),
        Unflagged => "UNFLAGGED".into(),
        Answered => "ANSWERED".into(),
        Unanswered => "UNANSWERED".into(),
        Deleted => "DELETED".into(),
        Undeleted => "UNDELETED".into(),
        Keyword(k) => format!("KEYWORD {}", astring(k, utf8)),
        Uids(ranges) => {
            let set: Vec<String> = ranges
                .iter()
                .map(|&(a, b)| match (a, b) {
                    (a, u32::MAX) => format!("{a}:*"),
                    (a, b) if a == b => a.to_string(),
                    (a, b) => format!("{a}:{b}"),
                })
                .collect();
            format!("UID {}", set.join(","))
        }
        Larger(n) => format!("LARGER {n}"),
        Smaller(n) => format!("SMALLER {n}"),
        All => "ALL".into(),
        And(terms) => format!(
            "({})",
            terms
                .iter()
                .map(|t| imap(t, utf8))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        // IMAP's OR is binary and prefix: a OR b OR c → OR a OR b c.
        Or(terms) => {
            let compiled: Vec<String> = terms.iter().map(|t| imap(t, utf8)).collect();
            let (last, rest) = compiled.split_last().expect("OR of at least two");
            rest.iter()
                .rev()
                .fold(last.clone(), |acc, term| format!("OR {term} {acc}"))
        }
        Not(term) => format!("NOT {}", imap(term, utf8)),
    }
}

fn gmail_value(value: &str) -> String {
    if value.contains([' ', '"', '(', ')', '{', '}']) {
        format!("\"{}\"", value.replace('"', "\\\""))
    } else {
        value.to_owned()
    }
}

fn gmail(criterion: &Criterion) -> Option<String> {
    use Criterion::*;
    Some(match criterion {
        From(v) => format!("from:{}", gmail_value(v)),
        To(v) => format!("to:{}", gmail_value(v)),
        Cc(v) => format!("cc:{}", gmail_value(v)),
        Bcc(v) => format!("bcc:{}", gmail_value(v)),
        Participants(v) => {
            let v = gmail_value(v);
            format!("{{to:{v} cc:{v} bcc:{v}}}")
        }
        Subject(v) => format!("subject:{}", gmail_value(v)),
        Body(v) | Text(v) => gmail_value(v),
        SentSince(d) | ReceivedSince(d) => format!("after:{}", d.format("%Y/%m/%d")),
        SentBefore(d) | ReceivedBefore(d) => format!("before:{}", d.format("%Y/%m/%d")),
        Seen => "is:read".into(),
        Unseen => "is:unread".into(),
        Flagged => "is:starred".into(),
        Unflagged => "-is:starred".into(),
        Keyword(k) => format!("label:{}", gmail_value(k)),
        Larger(n) => format!("larger:{n}"),
        Smaller(n) => format!("smaller:{n}"),
        All => String::new(),
        And(terms) => format!(
            "({})",
            terms
                .iter()
                .map(gmail)
                .collect::<Option<Vec<_>>>()?
                .join(" ")
        ),
        Or(terms) => format!(
            "{{{}}}",
            terms
                .iter()
                .map(gmail)
                .collect::<Option<Vec<_>>>()?
                .join(" ")
        ),
        Not(term) => format!("-{}", gmail(term)?),
        Header(..) | Answered | Unanswered | Deleted | Undeleted | Uids(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subjects(values: &[&str]) -> Vec<SearchQuery> {
        values
            .iter()
            .map(|v| SearchQuery::new().subject(*v))
            .collect()
    }

    #[test]
    fn oro_examples_compile_to_prefix_or() {
        assert_eq!(
            SearchQuery::new()
                .any(subjects(&["val1", "val2"]))
                .to_imap()
                .criteria,
            "OR SUBJECT val1 SUBJECT val2"
        );
        assert_eq!(
            SearchQuery::new()
                .any([
                    SearchQuery::new().not(SearchQuery::new().subject("val1")),
                    SearchQuery::new().subject("val2")
                ])
                .to_imap()
                .criteria,
            "OR NOT SUBJECT val1 SUBJECT val2"
        );
        assert_eq!(
            SearchQuery::new()
                .any(subjects(&["val1", "val2", "val3"]))
                .to_imap()
                .criteria,
            "OR SUBJECT val1 OR SUBJECT val2 SUBJECT val3"
        );
        assert_eq!(
            SearchQuery::new().subject("my product").to_imap().criteria,
            "SUBJECT \"my product\""
        );
        let grouped = SearchQuery::new()
            .any(subjects(&["val1", "val2", "val3"]))
            .from("x")
            .into_criterion();
        assert_eq!(
            SearchQuery::new().with(grouped).to_imap().criteria,
            "(OR SUBJECT val1 OR SUBJECT val2 SUBJECT val3 FROM x)"
        );
    }

    #[test]
    fn every_key_has_its_imap_form() {
        let day = NaiveDate::from_ymd_opt(2013, 1, 21).unwrap();
        let query = SearchQuery::new()
            .to("b@x")
            .cc("c@x")
            .bcc("d@x")
            .body("hello")
            .text("anywhere")
            .header("X-Mailer", "Outlook 16")
            .sent(Some(day), Some(day))
            .received(Some(day), Some(day))
            .seen(false)
            .flagged(true)
            .answered(true)
            .deleted(false)
            .keyword("$Label1")
            .uids(10, None)
            .larger(100)
            .smaller(1000)
            .participants("p@x");
        assert_eq!(
            query.to_imap().criteria,
            "TO b@x CC c@x BCC d@x BODY hello TEXT anywhere HEADER X-Mailer \"Outlook 16\" \
             SENTSINCE 21-Jan-2013 SENTBEFORE 21-Jan-2013 SINCE 21-Jan-2013 BEFORE 21-Jan-2013 \
             UNSEEN FLAGGED ANSWERED UNDELETED KEYWORD $Label1 UID 10:* LARGER 100 SMALLER 1000 \
             OR TO p@x OR CC p@x BCC p@x"
        );
        assert_eq!(SearchQuery::new().to_imap().criteria, "ALL");
    }

    #[test]
    fn non_ascii_values_become_utf8_literals_and_quotes_are_escaped() {
        let compiled = SearchQuery::new().subject("Grüße").to_imap();
        assert!(compiled.needs_utf8);
        assert_eq!(compiled.criteria, "SUBJECT {7+}\r\nGrüße");
        assert_eq!(
            SearchQuery::new().subject("a \"b\"").to_imap().criteria,
            r#"SUBJECT "a \"b\"""#
        );
    }

    #[test]
    fn gmail_raw_strings() {
        assert_eq!(
            SearchQuery::new()
                .subject("product")
                .to_gmail_raw()
                .unwrap(),
            "subject:product"
        );
        assert_eq!(
            SearchQuery::new()
                .subject("my product")
                .to_gmail_raw()
                .unwrap(),
            "subject:\"my product\""
        );
        let query = SearchQuery::new()
            .subject("val1")
            .any(subjects(&["val2", "val3"]))
            .not(SearchQuery::new().subject("product4"))
            .seen(false)
            .sent(NaiveDate::from_ymd_opt(2026, 1, 2), None);
        assert_eq!(
            query.to_gmail_raw().unwrap(),
            "subject:val1 {subject:val2 subject:val3} -subject:product4 is:unread after:2026/01/02"
        );
        assert_eq!(
            SearchQuery::new().uids(1, None).to_gmail_raw(),
            None,
            "no Gmail form: standard SEARCH"
        );
    }
}
