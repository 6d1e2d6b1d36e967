//! One thread that runs a process's directory operations (create, rename, unlink)
//! in order. Many threads creating and renaming files in one directory at once
//! mostly spin on that directory's lock in the kernel; one thread doing them back
//! to back is faster and leaves the CPU to the sessions.

use std::sync::mpsc;
use tokio::sync::oneshot;

type Task = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
pub struct FsWorker {
    tx: mpsc::Sender<Task>,
}

impl FsWorker {
    pub fn start(name: &str) -> std::io::Result<FsWorker> {
        let (tx, rx) = mpsc::channel::<Task>();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                while let Ok(task) = rx.recv() {
                    task();
                }
            })?;
        Ok(FsWorker { tx })
    }

    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
    ) -> std::io::Result<T> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .map_err(|_| std::io::Error::other("fs worker stopped"))?;
        rx.await
            .unwrap_or_else(|_| Err(std::io::Error::other("fs worker stopped")))
    }
}
