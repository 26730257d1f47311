//! Ring buffer writes and snapshots against a plain memcpy into the same
//! amount of memory, measured in the same run.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use outcap::ring::RingBuffer;

const RING_SIZE: usize = 10 * 1024 * 1024;

fn writes(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring_write");
    group.sample_size(20);
    for write_size in [4 * 1024, 64 * 1024] {
        let data = vec![b'x'; write_size];
        // Enough writes to wrap the ring once, so both phases are measured.
        let writes_per_iteration = RING_SIZE / write_size;
        group.throughput(Throughput::Bytes(
            (write_size * writes_per_iteration) as u64,
        ));

        let ring = RingBuffer::new(RING_SIZE).unwrap();
        group.bench_with_input(BenchmarkId::new("ring", write_size), &data, |b, data| {
            b.iter(|| {
                for _ in 0..writes_per_iteration {
                    ring.write(black_box(data));
                }
            })
        });

        let mut memory = vec![0u8; RING_SIZE];
        group.bench_with_input(BenchmarkId::new("memcpy", write_size), &data, |b, data| {
            b.iter(|| {
                for index in 0..writes_per_iteration {
                    let position = index * data.len();
                    memory[position..position + data.len()].copy_from_slice(black_box(data));
                }
                black_box(&memory);
            })
        });
    }
    group.finish();
}

fn snapshots(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring_snapshot");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(RING_SIZE as u64));
    let ring = RingBuffer::new(RING_SIZE).unwrap();
    ring.write(&vec![b'y'; RING_SIZE + RING_SIZE / 3]);
    group.bench_function("ring", |b| b.iter(|| black_box(ring.snapshot())));

    let source = vec![b'y'; RING_SIZE];
    group.bench_function("memcpy", |b| b.iter(|| black_box(source.to_vec())));
    group.finish();
}

criterion_group!(benches, writes, snapshots);
criterion_main!(benches);
