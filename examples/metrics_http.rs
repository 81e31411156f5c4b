//! A cache's metrics in Prometheus' text format and its health, over HTTP: a workload runs
//! against the cache while `GET /metrics` and `GET /health` are served on a port of its own
//! (std's TCP listener, one request at a time: enough for a scraper and a load balancer).
//!
//! `cargo run --release --features metrics --example metrics_http -- [--seconds 10] [--port 9898]`
//! then `curl http://127.0.0.1:9898/metrics` and `curl http://127.0.0.1:9898/health`
//! (503 with the concerns when unhealthy).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Zipf};
use stratacache::{Cache, HealthThresholds};

/// Answers one request: the metrics, the health, or 404.
fn answer(mut stream: TcpStream, cache: &Cache<u64, u64>, prometheus: &PrometheusHandle) {
    let mut line = String::new();
    if BufReader::new(&stream).read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let (status, body) = match path {
        "/metrics" => {
            cache.export_metrics("world");
            ("200 OK", prometheus.render())
        }
        "/health" => {
            let health = cache.health();
            let status = if health.is_healthy() {
                "200 OK"
            } else {
                "503 Service Unavailable"
            };
            (status, format!("{health}\n"))
        }
        _ => ("404 Not Found", String::from("try /metrics or /health\n")),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut seconds, mut port) = (10.0f64, 9898u16);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--seconds" => seconds = value.parse().expect("--seconds N"),
            "--port" => port = value.parse().expect("--port N"),
            other => panic!("unknown flag {other} (--seconds, --port)"),
        }
    }
    let prometheus = PrometheusBuilder::new()
        .install_recorder()
        .expect("the recorder");
    let thresholds = HealthThresholds {
        min_hit_ratio: 0.5,
        ..HealthThresholds::default()
    };
    let cache: Cache<u64, u64> = Cache::builder()
        .capacity(10_000)
        .metrics_name("world")
        .health_thresholds(thresholds)
        .build()
        .expect("a cache");
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("the port");
    let address = listener.local_addr().expect("an address");
    println!("serving http://{address}/metrics and /health for {seconds} s");
    {
        let cache = cache.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                answer(stream, &cache, &prometheus);
            }
        });
    }
    let zipf = Zipf::new(100_000.0, 0.9).expect("zipf");
    let mut rng = SmallRng::seed_from_u64(1);
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    while Instant::now() < until {
        for _ in 0..10_000 {
            let key = zipf.sample(&mut rng) as u64;
            if cache.get(&key).is_none() {
                let _ = cache.insert(key, key);
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("{:?}", cache.stats());
}
