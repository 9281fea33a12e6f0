//! Threads of a simulation: [`spawn`] and its [`JoinHandle`], whose `join` lets the others run.

use std::sync::Arc;

use super::world::{Exit, ME, SimThread, Status, World, enter, with_me};

/// A thread of the simulation the caller belongs to (or a plain thread outside one): it
/// does not run until the scheduler hands it the baton. Join it through the handle, which
/// lets the others run meanwhile.
///
/// # Errors
/// As [`std::thread::Builder::spawn`].
pub fn spawn<T, F>(name: impl Into<String>, f: F) -> std::io::Result<JoinHandle<T>>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    spawn_with(std::thread::Builder::new().name(name.into()), f)
}

/// [`spawn`] with a configured builder (name, stack size).
pub(crate) fn spawn_with<T, F>(
    builder: std::thread::Builder,
    f: F,
) -> std::io::Result<JoinHandle<T>>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let joined = ME.with(|m| m.borrow().as_ref().map(|(w, me)| (w.clone(), *me)));
    let Some((world, me)) = joined else {
        return builder
            .spawn(f)
            .map(|inner| JoinHandle { inner, sim: None });
    };
    let id = {
        let mut s = world.count(world.lock(), me);
        s.threads.push(SimThread {
            name: builder_name(&builder),
            os: None,
            // The caller holds the baton until this returns, so nobody picks the new thread
            // before its OS thread exists.
            status: Status::Runnable,
            token: false,
            waits_on: None,
        });
        s.threads.len() - 1
    };
    let child = world.clone();
    let spawned = builder.spawn(move || {
        enter(&child, id);
        let _exit = Exit;
        f()
    });
    let mut s = world.lock();
    let inner = match spawned {
        Ok(inner) => inner,
        Err(e) => {
            s.threads[id].status = Status::Finished;
            return Err(e);
        }
    };
    s.threads[id].os = Some(inner.thread().id());
    drop(s);
    Ok(JoinHandle {
        inner,
        sim: Some((world.clone(), id)),
    })
}

fn builder_name(b: &std::thread::Builder) -> String {
    // `Builder` does not expose its name; the Debug output does.
    let d = format!("{b:?}");
    d.split("name: Some(\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or("thread")
        .to_string()
}

/// A thread spawned with [`spawn`].
#[derive(Debug)]
pub struct JoinHandle<T> {
    inner: std::thread::JoinHandle<T>,
    sim: Option<(Arc<World>, usize)>,
}

impl<T> JoinHandle<T> {
    /// Waits for the thread to finish (letting the simulation's other threads run) and
    /// returns its value, or its panic.
    ///
    /// # Errors
    /// The thread's panic payload, as [`std::thread::JoinHandle::join`].
    pub fn join(self) -> std::thread::Result<T> {
        if let Some((world, id)) = &self.sim {
            with_me(|w, me| {
                debug_assert!(std::ptr::eq(w, &**world), "joined from another simulation");
                let mut s = w.count(w.lock(), me);
                while s.threads[*id].status != Status::Finished {
                    s.threads[me].status = Status::Joining(*id);
                    s = w.pass(s, me, false);
                }
            });
        }
        self.inner.join()
    }

    /// The underlying thread.
    pub fn thread(&self) -> &std::thread::Thread {
        self.inner.thread()
    }
}
