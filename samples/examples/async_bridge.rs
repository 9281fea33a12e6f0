//! # async_bridge — futures inside jobs, jobs inside async code
//!
//! A plain thread plays an async "IO runtime": it runs an async task (with a minimal executor)
//! that fills a request mailbox and awaits a job's result, a counter and an event; a job
//! `block_on`s the request future on its fiber, whose waker the IO thread wakes.
//!
//! ```text
//! cargo run -p jobsys-samples --example async_bridge
//! ```

use jobsys::sync::{Event, EventKind};
use jobsys::{Counter, JobSystem};
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// A one-value mailbox: the IO side sends, async code receives.
#[derive(Default)]
struct Mailbox(Mutex<(Option<String>, Option<Waker>)>);

impl Mailbox {
    fn send(&self, v: String) {
        let waker = {
            let mut s = self.0.lock().unwrap();
            s.0 = Some(v);
            s.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl Future for &Mailbox {
    type Output = String;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<String> {
        let mut s = self.0.lock().unwrap();
        match s.0.take() {
            Some(v) => Poll::Ready(v),
            None => {
                s.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// A minimal executor for the calling plain thread.
fn run_task<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) {
            return v;
        }
        std::thread::park();
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let jobs = JobSystem::builder().workers(2).build()?;
    let handle = jobs.handle();
    let request = Arc::new(Mailbox::default());
    let loaded = Arc::new(Event::new(EventKind::Manual));
    let batch = Arc::new(Counter::with_value(4)); // four jobs of the job's batch

    let io = {
        let (request, loaded, batch) = (request.clone(), loaded.clone(), batch.clone());
        std::thread::spawn(move || {
            run_task(async move {
                // Jobs awaited from async code: a detached job's value...
                let checksum = handle.spawn_detached(|_| (1..=1000u64).sum::<u64>()).await;
                println!("io task: a job computed {checksum}");
                // ...then the IO "completes" a request a job is blocked on...
                request.send(format!("level.pak ({checksum} bytes)"));
                // ...and the job's event and counter.
                loaded.wait_async().await;
                batch.wait_async(0).await;
                println!("io task: the job loaded the level and its batch finished");
            })
        })
    };

    jobs.run(|ctx| {
        // A future inside a job: the fiber parks until the IO thread wakes its waker.
        let what = ctx.block_on(&*request);
        println!("job on worker {}: got {what}", ctx.worker_index());
        ctx.scope(|s| {
            for _ in 0..4 {
                s.spawn(|_| batch.sub(1));
            }
        });
        loaded.set();
        // Keep worker 0 in `run` until the IO task is done with the system's jobs.
        while !io.is_finished() {
            ctx.yield_now();
        }
    });
    io.join().expect("the io task panicked");
    Ok(())
}
