//! Which webhooks want which events: an in-memory copy of every project's
//! webhooks, read on the ingest path without touching the store.
//!
//! The store is the truth. Every webhook write refreshes the copy of its
//! project right after the store commits, so routing never sees a deleted
//! webhook. With several nodes (PostgreSQL), `follow` also applies the
//! database's change notices (`store::notify`), whichever node made the change.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tokio::sync::Notify;

use crate::catalog::ObjectRef;
use crate::ids::{ProjectId, WebhookId};
use crate::store::notify::{FULL_RELOAD, RoutingChange, RoutingChanges};
use crate::store::{Store, StoreResult};
use crate::webhook::Webhook;

#[derive(Default)]
pub struct Subscriptions {
    inner: RwLock<Inner>,
    /// Woken after every change, for waits that depend on a webhook's
    /// configuration (a lane's pace).
    changed: Notify,
}

#[derive(Default)]
struct Inner {
    /// Every project that exists, with its base for relative links: the
    /// ingest path checks it without a query.
    projects: HashMap<ProjectId, Option<String>>,
    by_project: HashMap<ProjectId, Arc<[Arc<Webhook>]>>,
    by_id: HashMap<WebhookId, Arc<Webhook>>,
}

impl Subscriptions {
    /// Loads every webhook of every project.
    pub async fn load(store: &dyn Store) -> StoreResult<Subscriptions> {
        let subs = Subscriptions::default();
        for project in store.list_projects().await? {
            subs.project_saved(&project.id, project.link_base_url.clone());
        }
        let mut grouped: HashMap<ProjectId, Vec<Webhook>> = HashMap::new();
        for webhook in store.list_all_webhooks().await? {
            grouped
                .entry(webhook.project_id.clone())
                .or_default()
                .push(webhook);
        }
        for (project, webhooks) in grouped {
            subs.replace_project(&project, webhooks);
        }
        Ok(subs)
    }

    /// Records a created or updated project.
    pub fn project_saved(&self, project_id: &ProjectId, link_base_url: Option<String>) {
        let mut inner = self.inner.write().expect("subscriptions lock poisoned");
        inner.projects.insert(project_id.clone(), link_base_url);
    }

    /// The project's base URL for relative links, if it set one.
    pub fn link_base(&self, project_id: &ProjectId) -> Option<String> {
        let inner = self.inner.read().expect("subscriptions lock poisoned");
        inner.projects.get(project_id).cloned().flatten()
    }

    /// Forgets a deleted project and its webhooks.
    pub fn project_deleted(&self, project_id: &ProjectId) {
        self.replace_project(project_id, Vec::new());
        self.inner
            .write()
            .expect("subscriptions lock poisoned")
            .projects
            .remove(project_id);
    }

    pub fn project_exists(&self, project_id: &ProjectId) -> bool {
        self.inner
            .read()
            .expect("subscriptions lock poisoned")
            .projects
            .contains_key(project_id)
    }

    /// Re-reads one project's webhooks after a change to them.
    pub async fn refresh_webhooks(
        &self,
        store: &dyn Store,
        project_id: &ProjectId,
    ) -> StoreResult<()> {
        let webhooks = store.list_webhooks(project_id).await?;
        self.replace_project(project_id, webhooks);
        Ok(())
    }

    /// Re-reads one project: its link base and its webhooks, or forgets it
    /// when it is gone.
    pub async fn refresh_project(
        &self,
        store: &dyn Store,
        project_id: &ProjectId,
    ) -> StoreResult<()> {
        match store.get_project(project_id).await? {
            Some(project) => {
                self.project_saved(&project.id, project.link_base_url.clone());
                self.refresh_webhooks(store, &project.id).await
            }
            None => {
                self.project_deleted(project_id);
                Ok(())
            }
        }
    }

    /// Re-reads every project that exists.
    pub async fn refresh_all(&self, store: &dyn Store) -> StoreResult<()> {
        for project in store.list_projects().await? {
            self.project_saved(&project.id, project.link_base_url.clone());
            self.refresh_webhooks(store, &project.id).await?;
        }
        Ok(())
    }

    /// Keeps the copy in step with the database when several nodes share it
    /// (`store::notify`): applies each change as it comes, and re-reads
    /// everything every `FULL_RELOAD`. Runs until the listener stops.
    pub async fn follow(self: Arc<Self>, store: Arc<dyn Store>, mut changes: RoutingChanges) {
        let mut reload = tokio::time::interval(FULL_RELOAD);
        reload.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        reload.tick().await;
        loop {
            let change = tokio::select! {
                change = changes.next() => match change {
                    Some(change) => change,
                    None => return,
                },
                _ = reload.tick() => RoutingChange::Everything,
            };
            let result = match &change {
                RoutingChange::Project(id) => self.refresh_project(&*store, id).await,
                RoutingChange::Everything => self.refresh_all(&*store).await,
            };
            if let Err(e) = result {
                // The next notice or the next full reload tries again.
                tracing::warn!(error = %e, ?change, "could not refresh routing");
            }
        }
    }

    fn replace_project(&self, project_id: &ProjectId, webhooks: Vec<Webhook>) {
        let webhooks: Vec<Arc<Webhook>> = webhooks.into_iter().map(Arc::new).collect();
        let mut inner = self.inner.write().expect("subscriptions lock poisoned");
        if let Some(old) = inner.by_project.remove(project_id) {
            for w in old.iter() {
                inner.by_id.remove(&w.id);
            }
        }
        for w in &webhooks {
            inner.by_id.insert(w.id.clone(), w.clone());
        }
        if !webhooks.is_empty() {
            inner.by_project.insert(project_id.clone(), webhooks.into());
        }
        drop(inner);
        self.changed.notify_waiters();
    }

    /// Resolves after the next change to any webhook (enable it first to
    /// catch a change made while reading).
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// The enabled webhooks of `project_id` that want this event.
    pub fn matching(
        &self,
        project_id: &ProjectId,
        event_type: &str,
        object: Option<&ObjectRef>,
    ) -> Vec<Arc<Webhook>> {
        let webhooks = {
            let inner = self.inner.read().expect("subscriptions lock poisoned");
            match inner.by_project.get(project_id) {
                Some(list) => list.clone(),
                None => return Vec::new(),
            }
        };
        webhooks
            .iter()
            .filter(|w| w.matches(event_type, object))
            .cloned()
            .collect()
    }

    /// The current configuration of a webhook, as the sender must use it.
    pub fn get(&self, webhook_id: &WebhookId) -> Option<Arc<Webhook>> {
        self.inner
            .read()
            .expect("subscriptions lock poisoned")
            .by_id
            .get(webhook_id)
            .cloned()
    }
}
