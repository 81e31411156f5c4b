//! The metrics facade: a Prometheus scrape, over HTTP, shows the cache's counters, gauges and
//! sampled latency histogram with the values the cache's statistics hold.
#![cfg(feature = "metrics")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use metrics_exporter_prometheus::PrometheusBuilder;
use stratacache::Cache;

/// The value of the sample `name` with labels containing `labels` in a scrape.
fn value(scrape: &str, name: &str, labels: &str) -> Option<f64> {
    scrape
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| line.starts_with(name) && line.contains(labels))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

#[test]
fn a_prometheus_scrape_shows_the_caches_counters_gauges_and_timed_lookups() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let rendered = handle.clone();
    metrics::set_global_recorder(recorder).expect("the only recorder in this test binary");
    let cache: Cache<u64, u64> = Cache::builder()
        .capacity(1_000)
        .metrics_name("world")
        .build()
        .unwrap();
    for key in 0..3_000u64 {
        if cache.get(&(key % 500)).is_none() {
            cache.insert(key % 500, key).unwrap();
        }
    }
    cache.export_metrics("world");
    // Scraped over HTTP, as a Prometheus server would.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request).unwrap();
        let body = handle.render();
        write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
    });
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: test\r\n\r\n")
        .unwrap();
    let mut scrape = String::new();
    stream.read_to_string(&mut scrape).unwrap();
    server.join().unwrap();

    let stats = cache.stats();
    let hits = |tier| {
        value(
            &scrape,
            "stratacache_hits_total",
            &format!("tier=\"{tier}\""),
        )
        .unwrap()
    };
    assert_eq!(
        hits("l1") + hits("l2"),
        (stats.l1_hits + stats.l2_hits) as f64,
        "{scrape}"
    );
    assert_eq!(
        value(&scrape, "stratacache_misses_total", "cache=\"world\""),
        Some(stats.misses as f64)
    );
    assert_eq!(value(&scrape, "stratacache_misses_total", ""), Some(500.0));
    assert_eq!(
        value(&scrape, "stratacache_entries", "cache=\"world\""),
        Some(500.0)
    );
    assert!(value(&scrape, "stratacache_memory_bytes", "world").unwrap() > 0.0);
    // 3,000 lookups on one thread: two timed (one in 1,024), hits in memory by then.
    let timed = |tier| {
        value(
            &scrape,
            "stratacache_get_seconds_count",
            &format!("tier=\"{tier}\""),
        )
    };
    assert_eq!(
        timed("l1").unwrap_or(0.0) + timed("l2").unwrap_or(0.0),
        2.0,
        "{scrape}"
    );
    assert_eq!(timed("miss"), None);

    // Frames shorter than the sampling interval are still sampled at its rate: 4,096 frames of
    // 16 lookups, 65,536 lookups, about 64 timed (each frame's count starts at a drawn phase).
    let frames: Cache<u64, u64> = Cache::builder()
        .capacity(1_000)
        .metrics_name("frames")
        .build()
        .unwrap();
    frames.insert(1, 1).unwrap();
    let frames_handle = frames.handle();
    for _ in 0..4_096 {
        let frame = frames_handle.frame();
        for _ in 0..16 {
            assert_eq!(frame.get(&1), Some(1));
        }
    }
    let scrape = rendered.render();
    let timed = ["l1", "l2"]
        .map(|tier| {
            value(
                &scrape,
                "stratacache_get_seconds_count",
                &format!("cache=\"frames\",tier=\"{tier}\""),
            )
            .unwrap_or(0.0)
        })
        .iter()
        .sum::<f64>();
    assert!((32.0..=128.0).contains(&timed), "{timed} timed: {scrape}");
}
