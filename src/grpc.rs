//! The gRPC adapter of the generated `AuditService` trait: proto in, domain call, proto out. gRPC-web
//! and REST reach these same methods through the same tower stack.

use tonic::{Request, Response, Status};

use crate::auth::Principal;
use crate::domain::{ActionCount, EventBatch, SummaryRequest};
use crate::error::Error;
use crate::proto::audit::{self as pb, audit_service_server};
use crate::service::{AuditLog, EventRequest, ListRequest};
use crate::store::AppendOutcome;

pub struct GrpcAdapter {
    service: AuditLog,
}

impl GrpcAdapter {
    pub fn new(service: AuditLog) -> Self {
        Self { service }
    }

    pub fn into_server(self) -> audit_service_server::AuditServiceServer<Self> {
        audit_service_server::AuditServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl audit_service_server::AuditService for GrpcAdapter {
    async fn get_events_summary(
        &self,
        request: Request<pb::GetEventsSummaryRequest>,
    ) -> Result<Response<pb::GetEventsSummaryResponse>, Status> {
        let principal = principal(&request)?;
        let summary = SummaryRequest::try_from(request.into_inner())?;
        let buckets = self.service.summarize(&principal, summary).await?;
        Ok(Response::new(pb::GetEventsSummaryResponse { buckets: buckets.into_iter().map(Into::into).collect() }))
    }

    async fn batch_create_events(
        &self,
        request: Request<pb::BatchCreateEventsRequest>,
    ) -> Result<Response<pb::BatchCreateEventsResponse>, Status> {
        let principal = principal(&request)?;
        let batch = EventBatch::try_from(request.into_inner())?;
        let outcome = self.service.append(&principal, batch).await?;
        Ok(Response::new(outcome.into()))
    }

    async fn get_event(&self, request: Request<pb::GetEventRequest>) -> Result<Response<pb::AuditEvent>, Status> {
        let principal = principal(&request)?;
        let lookup = EventRequest::try_from(request.into_inner())?;
        let event = self.service.get_event(&principal, lookup).await?;
        Ok(Response::new(pb::AuditEvent::try_from(event)?))
    }

    async fn list_events(
        &self,
        request: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        let principal = principal(&request)?;
        let listing = ListRequest::try_from(request.into_inner())?;
        let page = self.service.list_events(&principal, listing).await?;
        let events = page.events.into_iter().map(pb::AuditEvent::try_from).collect::<Result<_, Error>>()?;
        Ok(Response::new(pb::ListEventsResponse { events, next_page_token: page.next_page_token.unwrap_or_default() }))
    }
}

/// The caller the auth layer verified. Its absence means the layer is missing
/// from the stack: refuse rather than serve unauthenticated.
fn principal<T>(request: &Request<T>) -> Result<Principal, Error> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| Error::Unauthenticated("missing bearer token".into()))
}

impl From<ActionCount> for pb::ActionBucket {
    fn from(bucket: ActionCount) -> Self {
        Self { action: bucket.action, count: bucket.count, failure_count: bucket.failure_count }
    }
}

impl From<AppendOutcome> for pb::BatchCreateEventsResponse {
    fn from(outcome: AppendOutcome) -> Self {
        // A batch holds at most MAX_BATCH_EVENTS, far below i32::MAX.
        Self { created_count: outcome.created as i32, duplicate_count: outcome.duplicates as i32 }
    }
}
