//! A corpus of hostile mail, made in code so that it is exact and small in the repository:
//! messages real servers deliver and parsers choke on (no headers, broken encodings, NUL,
//! absurd sizes and depths, impossible dates). Every message is distinct from every other.

/// One hostile message: what it is, and its bytes.
#[derive(Debug, Clone)]
pub struct HostileMessage {
    pub name: &'static str,
    pub bytes: Vec<u8>,
}

fn message(name: &'static str, bytes: impl Into<Vec<u8>>) -> HostileMessage {
    HostileMessage {
        name,
        bytes: bytes.into(),
    }
}

fn base64_lines(data: &[u8]) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 38);
    for chunk in encoded.as_bytes().chunks(76) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push_str("\r\n");
    }
    out
}

/// The corpus: 44 messages, the largest about 30 MB (`big` false leaves that one out).
pub fn hostile_corpus(big: bool) -> Vec<HostileMessage> {
    let same = "Message-ID: <same@hostile.test>\r\nDate: Mon, 02 Nov 2026 10:00:00 +0000\r\nFrom: a@hostile.test\r\nTo: b@hostile.test\r\nSubject: the same headers\r\n";
    let plain = |extra: &str, body: &str| {
        format!("From: a@hostile.test\r\nTo: b@hostile.test\r\nSubject: {extra}\r\n\r\n{body}\r\n")
    };
    let mut corpus = vec![
        message("no headers at all", "\r\nonly a body, no header\r\n"),
        message("no headers at all, another body", "\r\nanother body, no header\r\n"),
        message("no blank line, no body", "Subject: headers only\r\nFrom: a@hostile.test\r\n"),
        message("not a message at all", "just some text without any header line"),
        message("no Message-ID", plain("no message id", "body")),
        message("same headers, body one", format!("{same}\r\nfirst body\r\n")),
        message("same headers, body two (same size)", format!("{same}\r\nfirst bodY\r\n")),
        message("same headers, body three", format!("{same}\r\na third, longer body\r\n")),
        message(
            "NUL in subject, names, body and attachment name",
            b"From: Ali\0ce <a@hostile.test>\r\nTo: B\0b <b@hostile.test>\r\nSubject: nul\0subject\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nbody with \0 NUL\r\n--b\r\nContent-Type: application/octet-stream; name=\"fi\0le.bin\"\r\nContent-Disposition: attachment; filename=\"fi\0le.bin\"\r\n\r\nxyz\r\n--b--\r\n".to_vec(),
        ),
        message(
            "invalid UTF-8 in headers and body",
            b"From: \xff\xfe <a@hostile.test>\r\nSubject: caf\xe9 \xc3\x28 broken\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xc3\x28\xa0\xa1 invalid utf-8 body\r\n".to_vec(),
        ),
        message(
            "unknown charset",
            "Subject: =?x-klingon?Q?tlhIngan?=\r\nContent-Type: text/plain; charset=x-klingon\r\n\r\nQapla'\r\n",
        ),
        message("bare LF line ends", "From: a@hostile.test\nSubject: bare LF\n\nline one\nline two\n"),
        message("CR-only line ends", "From: a@hostile.test\rSubject: CR only\r\rline one\rline two\r"),
        message("1 MB header line", format!("Subject: long\r\nX-Long: {}\r\n\r\nbody\r\n", "h".repeat(1024 * 1024))),
        message("a header folded 10,000 times", format!("Subject: folded\r\nX-Folded: start{}\r\n\r\nbody\r\n", "\r\n x".repeat(10_000))),
        message("100,000-character subject", format!("Subject: {}\r\n\r\nbody\r\n", "s".repeat(100_000))),
        message("10,000 recipients", format!("Subject: many\r\nTo: {}\r\n\r\nbody\r\n", (0..10_000).map(|i| format!("r{i}@hostile.test")).collect::<Vec<_>>().join(",\r\n "))),
        message("broken base64", "Subject: broken base64\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not*base64$$$\r\n===\r\n"),
        message("broken quoted-printable", "Subject: broken qp\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=\r\n=4\r\n"),
        message("unknown transfer encoding", "Subject: x-enc\r\nContent-Transfer-Encoding: x-martian\r\n\r\nbody\r\n"),
        message("broken encoded words", "Subject: =?utf-8?B?!!!?= =?utf-8?Q?=ZZ?= =?nope?X?y?=\r\nFrom: =?utf-8?B?????@@@?= <a@hostile.test>\r\n\r\nbody\r\n"),
        message("garbage addresses", "From: <<<@@>>>, ,,, \"unterminated\r\nTo: @, <>, a@b@c\r\nCc: ;;;\r\nSubject: garbage addresses\r\n\r\nbody\r\n"),
        message("a Message-ID with spaces and no brackets", "Message-ID: not an id at all\r\nSubject: odd id\r\n\r\nbody\r\n"),
        message("a 10,000-character Message-ID", format!("Message-ID: <{}@hostile.test>\r\nSubject: long id\r\n\r\nbody\r\n", "i".repeat(10_000))),
        message("duplicate headers", "Subject: one\r\nSubject: two\r\nFrom: a@x\r\nFrom: b@x\r\nMessage-ID: <dup1@x>\r\nMessage-ID: <dup2@x>\r\n\r\nbody\r\n"),
        message("a header line without a colon", "Subject: colonless\r\nThis line has no colon\r\n\r\nbody\r\n"),
        message("8-bit header name", b"Subject: 8bit name\r\nX-\xe9t\xe9: value\r\n\r\nbody\r\n".to_vec()),
        message("date in year 0", "Date: Sat, 01 Jan 0000 00:00:00 +0000\r\nSubject: year 0\r\n\r\nbody\r\n"),
        message("date in 1900", "Date: Mon, 01 Jan 1900 00:00:00 +0000\r\nSubject: year 1900\r\n\r\nbody\r\n"),
        message("date in 9999", "Date: Fri, 31 Dec 9999 23:59:59 +0000\r\nSubject: year 9999\r\n\r\nbody\r\n"),
        message("date out of any range", "Date: Thu, 99 Zzz 99999999999 99:99:99 +9999\r\nSubject: impossible date\r\n\r\nbody\r\n"),
        message("multipart without a boundary", "Subject: no boundary\r\nContent-Type: multipart/mixed\r\n\r\n--\r\nbody\r\n"),
        message("multipart never closed", "Subject: unclosed\r\nContent-Type: multipart/mixed; boundary=\"u\"\r\n\r\n--u\r\nContent-Type: text/plain\r\n\r\nopen part\r\n"),
        message("multipart without parts", "Subject: empty multipart\r\nContent-Type: multipart/mixed; boundary=\"e\"\r\n\r\n--e--\r\n"),
        message("garbage content type", "Subject: garbage type\r\nContent-Type: ;;;/\"\"\"; charset=\r\n\r\nbody\r\n"),
        message("attachment with no name and a broken RFC 2231 name", "Subject: attachments\r\nContent-Type: multipart/mixed; boundary=\"a\"\r\n\r\n--a\r\nContent-Disposition: attachment\r\n\r\nnameless\r\n--a\r\nContent-Disposition: attachment; filename*=utf-8''%ZZ%\r\n\r\nbroken name\r\n--a--\r\n"),
        message("nested message/rfc822", "Subject: outer\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: message/rfc822\r\n\r\nSubject: innermost\r\n\r\nbody\r\n"),
        message("HTML only with script", "Subject: html\r\nContent-Type: text/html\r\n\r\n<html><script>alert(1)</script><body onload=x()>hi</body></html>\r\n"),
        message("a 2 MB single line body", format!("Subject: one line\r\n\r\n{}\r\n", "l".repeat(2 * 1024 * 1024))),
    ];
    let mut nested = String::from("Subject: nested 500 deep\r\n");
    for depth in 0..500 {
        nested.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"d{depth}\"\r\n\r\n--d{depth}\r\n"
        ));
    }
    nested.push_str("Content-Type: text/plain\r\n\r\nthe bottom\r\n");
    for depth in (0..500).rev() {
        nested.push_str(&format!("--d{depth}--\r\n"));
    }
    corpus.push(message("multipart nested 500 deep", nested));
    let mut many = String::from(
        "Subject: 2,000 attachments\r\nContent-Type: multipart/mixed; boundary=\"m\"\r\n\r\n",
    );
    for index in 0..2_000 {
        many.push_str(&format!("--m\r\nContent-Type: application/octet-stream; name=\"f{index}.bin\"\r\nContent-Disposition: attachment; filename=\"f{index}.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n"));
    }
    many.push_str("--m--\r\n");
    corpus.push(message("2,000 attachments", many));
    corpus.push(message("a single byte", "x"));
    if big {
        let payload: Vec<u8> = (0..22 * 1024 * 1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        corpus.push(message(
            "a 30 MB message",
            format!("Subject: thirty megabytes\r\nContent-Type: multipart/mixed; boundary=\"big\"\r\n\r\n--big\r\nContent-Type: text/plain\r\n\r\nsee the attachment\r\n--big\r\nContent-Type: application/octet-stream; name=\"big.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}--big--\r\n", base64_lines(&payload)),
        ));
    }
    corpus
}

/// A normal message to follow hostile message `index`: it must arrive whatever came before.
pub fn sentinel(index: usize) -> Vec<u8> {
    format!("Message-ID: <sentinel-{index}@hostile.test>\r\nFrom: s@hostile.test\r\nSubject: sentinel {index}\r\nDate: Mon, 02 Nov 2026 10:00:00 +0000\r\n\r\nsentinel {index} arrived\r\n").into_bytes()
}
