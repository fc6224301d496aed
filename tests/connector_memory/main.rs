//! A 2,000-message fetch keeps memory bounded: the peak of live heap allocations while
//! streaming (measured by a counting allocator, not RSS) does not grow with the number of
//! messages fetched.

#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.
#![allow(unsafe_code)] // The counting allocator below; nothing else.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::TimeZone;
use imap_connector::{Body, FetchParts, ImapConnector, Security};
use integration_tests::connector_config;
use test_support::{DovecotVariant, MailGenerator, MailGeneratorConfig, RawImap, shared_dovecot};

struct CountingAllocator;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counters are only
// arithmetic on the sizes it was asked for.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: the pointer came from `alloc` above with this layout.
        unsafe { System.dealloc(pointer, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's arguments.
        let new = unsafe { System.realloc(pointer, layout, new_size) };
        if !new.is_null() {
            if new_size >= layout.size() {
                let live = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size
                    - layout.size();
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Fetches `uids` and returns (messages, bytes of bodies seen, peak live heap above the start).
async fn fetch_peak(connector: &mut ImapConnector, uids: &[u32]) -> (usize, usize, usize) {
    let start = LIVE.load(Ordering::Relaxed);
    PEAK.store(start, Ordering::Relaxed);
    let mut stream = connector.fetch(uids, FetchParts::Full);
    let (mut count, mut bytes) = (0, 0);
    while let Some(message) = stream.next().await {
        let message = message.unwrap();
        if let Body::Parsed {
            text, attachments, ..
        } = &message.body
        {
            bytes += text.as_ref().map_or(0, String::len);
            bytes += attachments.iter().map(|a| a.content.len()).sum::<usize>();
        }
        count += 1;
    }
    drop(stream);
    (count, bytes, PEAK.load(Ordering::Relaxed) - start)
}

#[tokio::test(flavor = "current_thread")]
async fn fetching_2000_messages_keeps_the_heap_peak_flat() {
    let endpoint = shared_dovecot(DovecotVariant::Full).unwrap_or_else(|e| panic!("{e}"));
    let user = endpoint.fresh_user("memory");
    let mut seed = RawImap::login_to(endpoint, &user).await.unwrap();
    let end = chrono::Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    let mut total_size = 0;
    for message in MailGenerator::new(MailGeneratorConfig::over_days_before(3, end, 300)).take(2000)
    {
        total_size += message.raw.len();
        seed.append(
            "INBOX",
            &message.flags,
            Some(message.internal_date),
            &message.raw,
        )
        .await
        .unwrap();
    }

    let mut connector = ImapConnector::new(connector_config(endpoint, Security::None, &user));
    connector.select("INBOX").await.unwrap();
    let all: Vec<u32> = (1..=2000).collect();
    let (count_500, _, peak_500) = fetch_peak(&mut connector, &all[..500]).await;
    let (count_2000, bytes, peak_2000) = fetch_peak(&mut connector, &all).await;
    assert_eq!((count_500, count_2000), (500, 2000));
    assert!(
        bytes > total_size / 2,
        "bodies were really downloaded and decoded: {bytes}"
    );
    println!(
        "peak heap above start: 500 messages {peak_500} B, 2000 messages {peak_2000} B, folder {total_size} B"
    );
    assert!(
        peak_2000 < 4 * 1024 * 1024,
        "streaming 2000 messages ({total_size} bytes) peaked at {peak_2000} bytes of heap"
    );
    assert!(
        peak_2000 <= peak_500 + peak_500 / 2 + 256 * 1024,
        "the peak grew with the number of messages: {peak_500} for 500, {peak_2000} for 2000"
    );
}
