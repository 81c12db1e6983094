use lyceum_platform::auth::{require_principal, scopes};
use lyceum_platform::convert::{paginate_by_time, required_id};
use lyceum_platform::db::TenantContext;
use lyceum_platform::{ApiError, Violations};
use lyceum_proto::instructor::v1 as pb;
use tonic::Request;
use uuid::Uuid;

use super::payments::RequestId;
use super::{InstructorApi, Page, wire};
use crate::domain::{Currency, PayoutId, UserId};
use crate::events;
use crate::store::payouts::{self, NewPayout, PayoutRow};

/// A payout already made for this request id is the answer to a retry; the same id
/// for another instructor or currency is a different request and is refused.
fn replay(
    existing: PayoutRow,
    instructor_id: Uuid,
    currency: &Currency,
) -> Result<PayoutRow, ApiError> {
    if existing.instructor_id == instructor_id && existing.currency == currency.as_str() {
        Ok(existing)
    } else {
        Err(ApiError::invalid(
            "request_id",
            "was already used for a payout with different parameters",
        ))
    }
}

/// A CreatePayout request, validated.
struct CreatePayout {
    instructor_id: Uuid,
    request_id: RequestId,
    currency: Currency,
}

impl TryFrom<pb::CreatePayoutRequest> for CreatePayout {
    type Error = ApiError;

    fn try_from(req: pb::CreatePayoutRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let instructor_id = required_id(&mut v, "instructor_id", &req.instructor_id);
        let request_id = v.check("request_id", RequestId::parse(&req.request_id));
        let currency = v.check("currency", Currency::parse(&req.currency));
        v.into_result()?;
        let (Some(instructor_id), Some(request_id), Some(currency)) =
            (instructor_id, request_id, currency)
        else {
            unreachable!("parsed when there are no violations")
        };
        Ok(Self {
            instructor_id,
            request_id,
            currency,
        })
    }
}

impl TryFrom<pb::ListPayoutsRequest> for Page {
    type Error = ApiError;

    fn try_from(req: pb::ListPayoutsRequest) -> Result<Self, ApiError> {
        Page::parse(req.page_size, &req.page_token)
    }
}

impl InstructorApi {
    pub(super) async fn create_payout_(
        &self,
        request: Request<pb::CreatePayoutRequest>,
    ) -> Result<pb::CreatePayoutResponse, ApiError> {
        let principal = require_principal(&request)?;
        let CreatePayout {
            instructor_id,
            request_id,
            currency,
        } = request.into_inner().try_into()?;
        // Platform admins, and the payout job: a service account with `payouts:write`.
        if !principal.has_platform_access() && !principal.has_scope(scopes::PAYOUTS_WRITE) {
            return Err(ApiError::PermissionDenied(
                "payouts are made by the platform".into(),
            ));
        }
        // Their policies cover payouts and revenue.
        let context = TenantContext::for_principal(&principal);
        let mut tx = self.db.begin(&context).await?;
        if let Some(existing) = payouts::by_request(&mut tx, request_id.as_str()).await? {
            tx.commit().await?;
            return Ok(pb::CreatePayoutResponse {
                payout: Some(wire::payout(replay(existing, instructor_id, &currency)?)),
            });
        }
        let payout_id = Uuid::now_v7();
        let (amount, count) = payouts::settle_pending(
            &mut tx,
            PayoutId::new(payout_id),
            UserId::new(instructor_id),
            currency.as_str(),
        )
        .await?;
        if count == 0 || amount <= 0 {
            tx.rollback().await?;
            // A concurrent call with this request id may have taken the earnings first.
            let mut tx = self.db.begin(&context).await?;
            let existing = payouts::by_request(&mut tx, request_id.as_str()).await?;
            tx.commit().await?;
            if let Some(existing) = existing {
                return Ok(pb::CreatePayoutResponse {
                    payout: Some(wire::payout(replay(existing, instructor_id, &currency)?)),
                });
            }
            // Refunds net against sales; a non-positive balance waits for later sales.
            return Err(ApiError::FailedPrecondition(if count == 0 {
                format!("the instructor has no pending earnings in {currency}")
            } else {
                format!(
                    "the instructor's pending earnings in {currency} are {amount}, nothing to pay"
                )
            }));
        }
        let inserted = payouts::insert(
            &mut tx,
            NewPayout {
                id: payout_id,
                request_id: request_id.as_str().to_owned(),
                instructor_id,
                currency: currency.as_str().to_owned(),
                amount_minor: amount,
                transaction_count: count,
            },
        )
        .await?;
        let Some(payout) = inserted else {
            // A concurrent call with the same request id committed first: its payout is
            // the answer, and this one's marks are undone.
            tx.rollback().await?;
            let mut tx = self.db.begin(&context).await?;
            let existing = payouts::by_request(&mut tx, request_id.as_str())
                .await?
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("payout request vanished")))?;
            tx.commit().await?;
            return Ok(pb::CreatePayoutResponse {
                payout: Some(wire::payout(replay(existing, instructor_id, &currency)?)),
            });
        };
        tx.publish(events::payout_made(&payout)).await?;
        tx.commit().await?;
        Ok(pb::CreatePayoutResponse {
            payout: Some(wire::payout(payout)),
        })
    }

    pub(super) async fn list_payouts_(
        &self,
        request: Request<pb::ListPayoutsRequest>,
    ) -> Result<pb::ListPayoutsResponse, ApiError> {
        let principal = require_principal(&request)?;
        let req = request.into_inner();
        let instructor_id = Self::instructor_of(&principal, &req.instructor_id)?;
        let Page { limit, after } = req.try_into()?;
        let mut tx = self
            .db
            .begin(&TenantContext::for_principal(&principal))
            .await?;
        let rows = payouts::list(&mut tx, UserId::new(instructor_id), after, limit + 1).await?;
        tx.commit().await?;
        let (rows, next_page_token) = paginate_by_time(rows, limit, |r| (r.created_at, r.id));
        Ok(pb::ListPayoutsResponse {
            payouts: rows.into_iter().map(wire::payout).collect(),
            next_page_token,
        })
    }
}
