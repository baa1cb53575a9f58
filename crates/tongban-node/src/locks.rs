//! Per-case locks. A request that reads a case, changes it and commits holds
//! the case's lock across all three, so two changes to one case never
//! overwrite each other; changes to different cases proceed in parallel and
//! share flushes. Entries are removed when their last holder lets go.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

type Slots = Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>;

/// The lock table.
#[derive(Default)]
pub(crate) struct CaseLocks {
    slots: Slots,
}

/// Holds one case's lock until dropped.
pub(crate) struct CaseGuard {
    guard: Option<OwnedMutexGuard<()>>,
    key: String,
    slots: Slots,
}

impl Drop for CaseGuard {
    fn drop(&mut self) {
        self.guard.take();
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        // Only the table's own reference left: nobody holds or awaits it.
        if slots
            .get(&self.key)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            slots.remove(&self.key);
        }
    }
}

impl CaseLocks {
    /// Locks one case (by application id).
    pub(crate) async fn lock(&self, key: &str) -> CaseGuard {
        let mutex = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.entry(key.to_owned()).or_default().clone()
        };
        CaseGuard {
            guard: Some(mutex.lock_owned().await),
            key: key.to_owned(),
            slots: self.slots.clone(),
        }
    }

    /// Locks several cases, in sorted order so that two callers never wait
    /// on each other.
    pub(crate) async fn lock_all(&self, keys: impl IntoIterator<Item = String>) -> Vec<CaseGuard> {
        let mut keys: Vec<String> = keys.into_iter().collect();
        keys.sort();
        keys.dedup();
        let mut guards = Vec::with_capacity(keys.len());
        for key in keys {
            guards.push(self.lock(&key).await);
        }
        guards
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lock_excludes_and_its_entry_goes_when_released() {
        let locks = CaseLocks::default();
        let a = locks.lock("a").await;
        let mut second = Box::pin(locks.lock("a"));
        assert!(
            futures_poll_once(second.as_mut()).await.is_none(),
            "second holder waits"
        );
        drop(a);
        let b = second.await;
        drop(b);
        assert!(locks.slots.lock().unwrap().is_empty());
        let all = locks
            .lock_all(["b".to_owned(), "a".to_owned(), "b".to_owned()])
            .await;
        assert_eq!(all.len(), 2);
    }

    async fn futures_poll_once<F: std::future::Future + Unpin>(f: F) -> Option<F::Output> {
        tokio::select! {
            biased;
            out = f => Some(out),
            () = tokio::task::yield_now() => None,
        }
    }
}
