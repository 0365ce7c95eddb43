//! The webhook outbox: lanes, claims and delivery states, against both
//! stores.

use super::*;
use crate::util::now_ms;

async fn outbox_lanes(store: Arc<dyn Store>) -> TestResult {
    const A: &str = "http://a.test/hook";
    const B: &str = "http://b.test/hook";
    store
        .outbox_enqueue((1..=3).map(|s| outbox_entry("r1", A, s)).collect())
        .await?;
    store
        .outbox_enqueue(vec![outbox_entry("r2", A, 1), outbox_entry("r1", B, 1)])
        .await?;
    // Enqueueing again changes nothing.
    let mut again = outbox_entry("r1", A, 1);
    again.body = "changed".to_owned();
    store.outbox_enqueue(vec![again]).await?;
    assert_eq!(store.outbox_last_seq("r1", A).await?, 3);
    assert_eq!(store.outbox_last_seq("r1", B).await?, 1);
    assert_eq!(store.outbox_last_seq("r9", A).await?, 0);

    // One head per lane, each the lane's lowest seq.
    let heads = store.outbox_heads(ALL).await?;
    let mut lanes: Vec<(String, String, u64)> = heads
        .iter()
        .map(|h| (h.run_id.clone(), h.target.url.clone(), h.seq))
        .collect();
    lanes.sort();
    assert_eq!(
        lanes,
        [
            ("r1".to_owned(), A.to_owned(), 1),
            ("r1".to_owned(), B.to_owned(), 1),
            ("r2".to_owned(), A.to_owned(), 1),
        ]
    );
    let head = heads.iter().find(|h| h.run_id == "r1" && h.target.url == A);
    let head = head.expect("r1 head");
    assert_eq!(head.body, "{\"seq\":1}");
    assert_eq!(head.state, OutboxState::Pending);
    assert_eq!(head.attempts, 0);
    assert_eq!(head.target.secret_env.as_deref(), Some("HOOK_SECRET"));
    assert_eq!(
        head.target.headers.get("x-team").map(String::as_str),
        Some("a")
    );

    // Claims: leased to one owner at a time, in seq order.
    let now = now_ms();
    let claim = store
        .outbox_claim(ALL, "r1", A, "me", now, now + 10_000)
        .await?;
    let OutboxClaim::Claimed(first) = claim else {
        panic!("expected a claim, got {claim:?}");
    };
    assert_eq!(first.seq, 1);
    assert_eq!(
        store
            .outbox_claim(ALL, "r1", A, "other", now, now + 10_000)
            .await?,
        OutboxClaim::Busy(now + 10_000)
    );
    // An expired lease is no lease.
    assert!(matches!(
        store
            .outbox_claim(ALL, "r1", A, "other", now + 20_000, now + 30_000)
            .await?,
        OutboxClaim::Claimed(_)
    ));
    // A stopping deliverer lets go of its leases.
    assert!(matches!(
        store
            .outbox_claim(ALL, "r2", A, "me", now, now + 10_000)
            .await?,
        OutboxClaim::Claimed(_)
    ));
    store.outbox_release("me").await?;
    assert!(matches!(
        store
            .outbox_claim(ALL, "r2", A, "other", now, now + 10_000)
            .await?,
        OutboxClaim::Claimed(_)
    ));
    store.outbox_release("other").await?;
    store.outbox_delivered("r1", A, 1).await?;
    // A failure schedules a retry: the lane waits, the next entry too.
    let OutboxClaim::Claimed(second) = store.outbox_claim(ALL, "r1", A, "me", now, now + 1).await?
    else {
        panic!("seq 2");
    };
    assert_eq!(second.seq, 2);
    store
        .outbox_failed("r1", A, 2, "HTTP 500".to_owned(), Some(now + 5_000))
        .await?;
    assert_eq!(
        store.outbox_claim(ALL, "r1", A, "me", now, now + 1).await?,
        OutboxClaim::NotDue(now + 5_000)
    );
    let OutboxClaim::Claimed(retry) = store
        .outbox_claim(ALL, "r1", A, "me", now + 5_000, now + 6_000)
        .await?
    else {
        panic!("seq 2 again");
    };
    assert_eq!((retry.seq, retry.attempts), (2, 1));
    assert_eq!(retry.last_error.as_deref(), Some("HTTP 500"));
    // Dead: the lane moves on to seq 3.
    store
        .outbox_failed("r1", A, 2, "HTTP 410".to_owned(), None)
        .await?;
    let OutboxClaim::Claimed(third) = store
        .outbox_claim(ALL, "r1", A, "me", now + 5_000, now + 6_000)
        .await?
    else {
        panic!("seq 3");
    };
    assert_eq!(third.seq, 3);
    store.outbox_delivered("r1", A, 3).await?;
    assert_eq!(
        store
            .outbox_claim(ALL, "r1", A, "me", now + 5_000, now + 6_000)
            .await?,
        OutboxClaim::Empty
    );
    assert!(matches!(
        store.outbox_delivered("r1", A, 99).await,
        Err(StoreError::NotFound { .. })
    ));

    let summary = store.outbox_summary(ALL, "r1").await?;
    assert_eq!(
        (summary.pending, summary.delivered, summary.dead),
        (1, 2, 1)
    );
    assert_eq!(summary.dead_entries.len(), 1);
    let dead = &summary.dead_entries[0];
    assert_eq!((dead.seq, dead.attempts), (2, 2));
    assert_eq!(dead.event_type, "step.started");
    assert_eq!(dead.last_error.as_deref(), Some("HTTP 410"));
    assert_eq!(
        store.outbox_summary(ALL, "nope").await?,
        OutboxSummary::default()
    );

    let pending = store
        .outbox_entries(ALL, None, Some(OutboxState::Pending), None)
        .await?;
    assert_eq!(pending.len(), 2);
    let r1 = store.outbox_entries(ALL, Some("r1"), None, None).await?;
    assert_eq!(
        r1.iter()
            .map(|e| (e.target.url.as_str(), e.seq))
            .collect::<Vec<_>>(),
        [(A, 1), (A, 2), (A, 3), (B, 1)]
    );
    assert_eq!(
        store.outbox_entries(ALL, None, None, Some(1)).await?.len(),
        1
    );
    let heads = store.outbox_heads(ALL).await?;
    assert_eq!(heads.len(), 2, "r1→A is done: {heads:?}");
    Ok(())
}
for_each_store!(outbox_lanes_claims_and_states, outbox_lanes);

/// What the deliverer's retry horizon rests on: a failing head keeps the
/// rest of its run's lane waiting but no other run's, and a retried entry
/// keeps the time it was enqueued (the horizon counts from it).
async fn outbox_failing_heads(store: Arc<dyn Store>) -> TestResult {
    const A: &str = "http://a.test/hook";
    store
        .outbox_enqueue(vec![
            outbox_entry("r1", A, 1),
            outbox_entry("r1", A, 2),
            outbox_entry("r2", A, 1),
        ])
        .await?;
    let now = now_ms();
    let OutboxClaim::Claimed(head) = store.outbox_claim(ALL, "r1", A, "me", now, now + 1).await?
    else {
        panic!("r1's head");
    };
    assert_eq!(head.seq, 1);
    for attempt in 1..=3u64 {
        let at = now + attempt * 1_000;
        store
            .outbox_failed("r1", A, 1, "HTTP 500".to_owned(), Some(at + 1_000))
            .await?;
        // r1's seq 2 waits behind its failing seq 1…
        assert_eq!(
            store.outbox_claim(ALL, "r1", A, "me", at, at + 1).await?,
            OutboxClaim::NotDue(at + 1_000)
        );
        let OutboxClaim::Claimed(retry) = store
            .outbox_claim(ALL, "r1", A, "me", at + 1_000, at + 1_001)
            .await?
        else {
            panic!("r1's seq 1 again");
        };
        assert_eq!((retry.seq, retry.attempts), (1, attempt as u32));
        assert_eq!(retry.created_at_ms, head.created_at_ms, "enqueue time kept");
    }
    // … while r2 is not held by it.
    let OutboxClaim::Claimed(other) = store.outbox_claim(ALL, "r2", A, "me", now, now + 1).await?
    else {
        panic!("r2 is held by r1's failure");
    };
    assert_eq!(other.seq, 1);
    Ok(())
}
for_each_store!(
    outbox_a_failing_head_holds_only_its_run,
    outbox_failing_heads
);

/// Eight deliverers (as in eight processes) claim one lane's head at once:
/// exactly one gets it; after it is delivered, the next claim gets the
/// lane's second entry, never the first again.
async fn concurrent_lane_claims(store: Arc<dyn Store>) -> TestResult {
    store.create_run(new_run("lane", None)).await?;
    store
        .outbox_enqueue(vec![
            outbox_entry("lane", "http://h/x", 1),
            outbox_entry("lane", "http://h/x", 2),
        ])
        .await?;
    let now = now_ms();
    let claims: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .outbox_claim(
                        ALL,
                        "lane",
                        "http://h/x",
                        &format!("d{i}"),
                        now,
                        now + 60_000,
                    )
                    .await
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for c in claims {
        if let OutboxClaim::Claimed(r) = c.await.expect("claim task")? {
            claimed.push(r.seq);
        }
    }
    assert_eq!(claimed, [1], "one deliverer holds the head");
    store.outbox_delivered("lane", "http://h/x", 1).await?;
    match store
        .outbox_claim(ALL, "lane", "http://h/x", "d9", now, now + 60_000)
        .await?
    {
        OutboxClaim::Claimed(r) => assert_eq!(r.seq, 2),
        other => panic!("expected the second entry, got {other:?}"),
    }
    Ok(())
}
for_each_store!(
    one_deliverer_claims_a_lane_at_a_time,
    concurrent_lane_claims
);
