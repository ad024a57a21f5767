//! The controller's side of the dashboard: [`paas_web_ui::Dashboard`] answered from the
//! same app services as the REST API (never SQL from the web UI).

use std::sync::Arc;

use paas_api::{App, Release};

use crate::apps::{self, AppsError};
use crate::state::Controller;

/// The dashboard's view of the controller.
pub struct ControllerDashboard {
    controller: Arc<Controller>,
}

impl ControllerDashboard {
    pub fn new(controller: Arc<Controller>) -> ControllerDashboard {
        ControllerDashboard { controller }
    }
}

impl paas_web_ui::Dashboard for ControllerDashboard {
    async fn apps(&self) -> Result<Vec<App>, String> {
        apps::list(&self.controller)
            .await
            .map_err(|e| e.to_string())
    }

    async fn app(&self, name: &str) -> Result<Option<App>, String> {
        apps::get(&self.controller, name)
            .await
            .map_err(|e| e.to_string())
    }

    async fn releases(&self, name: &str) -> Result<Vec<Release>, String> {
        match apps::releases(&self.controller, name).await {
            Ok(r) => Ok(r),
            Err(AppsError::NotFound(_)) => Ok(Vec::new()),
            Err(e) => Err(e.to_string()),
        }
    }
}
