//! jobsys's deterministic simulation: a frame under three seeds (each replays exactly: same
//! steps, same schedule), then a job that waits on an event nobody sets, which the simulation
//! reports as a deadlock with the wait graph instead of hanging.
//!
//! `cargo run -p jobsys-samples --example simulate --features simulation`

use jobsys::JobSystem;
use jobsys::sim::{Failure, Sim};
use jobsys::sync::{Channel, Event, EventKind};

fn frame() -> u64 {
    let jobs = JobSystem::builder().workers(3).build().expect("build");
    jobs.run(|ctx| {
        let chan = Channel::new(4);
        ctx.scope(|s| {
            s.spawn(|s| {
                for i in 1..=10u64 {
                    chan.send(s, i).expect("open");
                }
            });
            (0..10).map(|_| chan.recv(s).expect("open")).sum()
        })
    })
}

fn main() {
    for seed in [1, 2, 3] {
        let a = Sim::new(seed).run(frame).unwrap_or_else(|f| panic!("{f}"));
        let b = Sim::new(seed).run(frame).unwrap_or_else(|f| panic!("{f}"));
        assert_eq!((a.steps, a.schedule), (b.steps, b.schedule));
        println!(
            "seed {seed}: sum {} in {} steps, {} switches, schedule {:016x} (replayed exactly)",
            a.value, a.steps, a.switches, a.schedule
        );
    }

    let failure = Sim::new(4)
        .run(|| {
            let jobs = JobSystem::builder().workers(2).build().expect("build");
            let never = Event::new(EventKind::Manual);
            jobs.run(|ctx| ctx.join(|ctx| never.wait(ctx), |_| ()));
        })
        .expect_err("nobody sets the event");
    assert!(matches!(failure, Failure::Deadlock { .. }));
    println!("\n{failure}");
}
