use lyceum_platform::auth::{PrincipalKind, require_principal, scopes};
use lyceum_platform::convert::{optional_id, parse_id, required_id};
use lyceum_platform::db::TenantContext;
use lyceum_platform::text::BoundedText;
use lyceum_platform::{ApiError, Violations};
use lyceum_proto::instructor::v1 as pb;
use lyceum_proto::instructor::v1::payment_service_server::PaymentService;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{InstructorApi, wire};
use crate::domain::{FeeSource, Money, PaymentType, Provider, fee_for, fee_source};
use crate::events;
use crate::store::payments::NewPayment;
use crate::store::{payments, projections, workshops};

pub(super) type RequestId = BoundedText<200, true>;
type Reason = BoundedText<1000, false>;

/// A RecordPayment request, validated.
struct RecordPayment {
    request_id: RequestId,
    /// Who paid, when not the caller (payment operators record for others).
    payer: Option<Uuid>,
    instructor: Option<Uuid>,
    organization: Option<Uuid>,
    related: Option<Uuid>,
    amount: Money,
    provider: Provider,
    payment_type: PaymentType,
}

impl TryFrom<pb::RecordPaymentRequest> for RecordPayment {
    type Error = ApiError;

    fn try_from(req: pb::RecordPaymentRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let request_id = v.check("request_id", RequestId::parse(&req.request_id));
        let payer = optional_id(&mut v, "payer_id", &req.payer_id);
        let instructor = optional_id(&mut v, "instructor_id", &req.instructor_id);
        let organization = optional_id(&mut v, "organization_id", &req.organization_id);
        let related = optional_id(&mut v, "related_entity_id", &req.related_entity_id);
        let amount = Money::payment(req.amount.as_ref())
            .map_err(|violations| {
                for violation in violations {
                    v.add(format!("amount.{}", violation.field), violation.description);
                }
            })
            .ok();
        let provider = v.check("provider", Provider::from_proto(req.provider));
        let payment_type = v.check("type", PaymentType::from_proto(req.r#type));
        v.into_result()?;
        let (
            Some(request_id),
            Some(payer),
            Some(instructor),
            Some(organization),
            Some(related),
            Some(amount),
            Some(provider),
            Some(payment_type),
        ) = (
            request_id,
            payer,
            instructor,
            organization,
            related,
            amount,
            provider,
            payment_type,
        )
        else {
            unreachable!("parsed when there are no violations")
        };
        Ok(Self {
            request_id,
            payer,
            instructor,
            organization,
            related,
            amount,
            provider,
            payment_type,
        })
    }
}

/// A FailPayment request, validated. The id is checked before the reason, and alone:
/// a malformed id is the only violation answered.
struct FailPayment {
    id: Uuid,
    reason: Reason,
}

impl TryFrom<pb::FailPaymentRequest> for FailPayment {
    type Error = ApiError;

    fn try_from(req: pb::FailPaymentRequest) -> Result<Self, ApiError> {
        let id = parse_id("id", &req.id)?;
        let reason = Reason::parse(&req.reason).map_err(|e| ApiError::invalid("reason", e))?;
        Ok(Self { id, reason })
    }
}

/// A RefundPayment request, validated.
struct RefundPayment {
    id: Uuid,
    request_id: RequestId,
    reason: Reason,
    /// The amount to refund; 0 for all that is left.
    amount_minor: i64,
}

impl TryFrom<pb::RefundPaymentRequest> for RefundPayment {
    type Error = ApiError;

    fn try_from(req: pb::RefundPaymentRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let id = required_id(&mut v, "id", &req.id);
        let request_id = v.check("request_id", RequestId::parse(&req.request_id));
        let reason = v.check("reason", Reason::parse(&req.reason));
        if req.amount_minor < 0 {
            v.add("amount_minor", "must not be negative");
        }
        v.into_result()?;
        let (Some(id), Some(request_id), Some(reason)) = (id, request_id, reason) else {
            unreachable!("parsed when there are no violations")
        };
        Ok(Self {
            id,
            request_id,
            reason,
            amount_minor: req.amount_minor,
        })
    }
}

impl InstructorApi {
    async fn record_payment_(
        &self,
        request: Request<pb::RecordPaymentRequest>,
    ) -> Result<pb::RecordPaymentResponse, ApiError> {
        let principal = require_principal(&request)?;
        let RecordPayment {
            request_id,
            payer,
            instructor,
            organization,
            related,
            amount,
            provider,
            payment_type,
        } = request.into_inner().try_into()?;
        let payer_id = payer.unwrap_or(principal.subject);
        if payer_id != principal.subject && !Self::is_payment_operator(&principal) {
            return Err(ApiError::PermissionDenied(
                "payments are recorded for the caller".into(),
            ));
        }
        if principal.kind != PrincipalKind::User && payer.is_none() {
            return Err(ApiError::invalid(
                "payer_id",
                "is required for service accounts",
            ));
        }
        // Everything that defines the payment: a retry must repeat it exactly.
        let fingerprint = format!(
            "{:x}",
            Sha256::digest(
                format!(
                    "{payer_id}|{instructor:?}|{organization:?}|{}|{}|{}|{}|{related:?}",
                    amount.minor,
                    amount.currency,
                    provider.as_str(),
                    payment_type.as_str()
                )
                .as_bytes()
            )
        );
        // A payer records their own payment (pending, feeless: the policies insist); payment
        // operators record any.
        let mut tx = self
            .db
            .begin(&TenantContext::for_principal(&principal))
            .await?;
        let (row, _created) = payments::insert_once(
            &mut tx,
            NewPayment {
                request_id: request_id.into_inner(),
                fingerprint: fingerprint.clone(),
                payer_id,
                instructor_id: instructor,
                organization_id: organization,
                amount,
                provider,
                payment_type,
                related_entity_id: related,
            },
        )
        .await?;
        tx.commit().await?;
        // Another payer's payment holds the id: the caller's policies hide it.
        let Some(row) = row else {
            return Err(ApiError::invalid(
                "request_id",
                "was already used by another payer",
            ));
        };
        if row.request_fingerprint != fingerprint {
            return Err(ApiError::invalid(
                "request_id",
                "was already used for a payment with different parameters",
            ));
        }
        if row.payer_id != principal.subject && !Self::is_payment_operator(&principal) {
            return Err(ApiError::invalid(
                "request_id",
                "was already used by another payer",
            ));
        }
        Ok(pb::RecordPaymentResponse {
            payment: Some(wire::payment(row)),
        })
    }

    async fn get_payment_(
        &self,
        request: Request<pb::GetPaymentRequest>,
    ) -> Result<pb::GetPaymentResponse, ApiError> {
        let principal = require_principal(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let mut tx = self
            .db
            .begin(&TenantContext::for_principal(&principal))
            .await?;
        let row = payments::get(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("payment"))?;
        tx.commit().await?;
        Ok(pb::GetPaymentResponse {
            payment: Some(wire::payment(row)),
        })
    }

    /// Platform admins, and service accounts with the `payments:write` scope (the
    /// payment provider's handler).
    fn is_payment_operator(principal: &lyceum_platform::auth::Principal) -> bool {
        principal.has_platform_access() || principal.has_scope(scopes::PAYMENTS_WRITE)
    }

    fn require_payment_operator(
        principal: &lyceum_platform::auth::Principal,
    ) -> Result<(), ApiError> {
        if Self::is_payment_operator(principal) {
            Ok(())
        } else {
            Err(ApiError::PermissionDenied(
                "payment outcomes come from the payment provider's handler".into(),
            ))
        }
    }

    async fn succeed_payment_(
        &self,
        request: Request<pb::SucceedPaymentRequest>,
    ) -> Result<pb::SucceedPaymentResponse, ApiError> {
        let principal = require_principal(&request)?;
        Self::require_payment_operator(&principal)?;
        let req = request.into_inner();
        let id = parse_id("id", &req.id)?;
        let mut tx = self
            .db
            .begin(&TenantContext::for_principal(&principal))
            .await?;
        let payment = payments::lock(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("payment"))?;
        let row = if payment.status.takes_success() {
            // The fee is fixed now, once; every sale and refund of the payment uses it.
            let fee_instructor = match fee_source(
                payment.payment_type,
                payment.related_entity_id,
                payment.instructor_id,
            ) {
                FeeSource::EnrollmentInstructor(enrollment) => {
                    projections::enrollment_instructor(&mut tx, enrollment).await?
                }
                FeeSource::RegistrationInstructor(registration) => {
                    workshops::registration_instructor(&mut tx, registration).await?
                }
                FeeSource::NamedInstructor(instructor) => instructor,
            };
            let fee_bps = payments::fee_bps_for(&mut tx, fee_instructor).await?;
            let fee = fee_for(payment.amount_minor, fee_bps);
            let provider_id = Some(req.provider_transaction_id).filter(|p| !p.is_empty());
            let row = payments::mark_succeeded(&mut tx, id, provider_id, fee_bps, fee).await?;
            tx.publish(events::payment_succeeded(&row)).await?;
            row
        } else {
            payment
        };
        tx.commit().await?;
        Ok(pb::SucceedPaymentResponse {
            payment: Some(wire::payment(row)),
        })
    }

    async fn fail_payment_(
        &self,
        request: Request<pb::FailPaymentRequest>,
    ) -> Result<pb::FailPaymentResponse, ApiError> {
        let principal = require_principal(&request)?;
        Self::require_payment_operator(&principal)?;
        let FailPayment { id, reason } = request.into_inner().try_into()?;
        let mut tx = self
            .db
            .begin(&TenantContext::for_principal(&principal))
            .await?;
        let payment = payments::lock(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("payment"))?;
        let row = if payment.status.takes_failure() {
            payments::mark_failed(&mut tx, id, reason.as_str()).await?
        } else {
            payment
        };
        tx.commit().await?;
        Ok(pb::FailPaymentResponse {
            payment: Some(wire::payment(row)),
        })
    }

    async fn refund_payment_(
        &self,
        request: Request<pb::RefundPaymentRequest>,
    ) -> Result<pb::RefundPaymentResponse, ApiError> {
        let principal = require_principal(&request)?;
        Self::require_payment_operator(&principal)?;
        let RefundPayment {
            id,
            request_id,
            reason,
            amount_minor,
        } = request.into_inner().try_into()?;
        let mut tx = self
            .db
            .begin(&TenantContext::for_principal(&principal))
            .await?;
        let refunded = events::revenue::refund_payment(
            &mut tx,
            events::revenue::RefundRequest {
                payment_id: id,
                request_id: request_id.as_str(),
                amount_minor,
                reason: reason.as_str(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(pb::RefundPaymentResponse {
            payment: Some(wire::payment(refunded.payment)),
            refund_transaction: refunded.transaction.map(wire::transaction),
        })
    }
}

#[tonic::async_trait]
impl PaymentService for InstructorApi {
    async fn record_payment(
        &self,
        r: Request<pb::RecordPaymentRequest>,
    ) -> Result<Response<pb::RecordPaymentResponse>, Status> {
        Ok(Response::new(self.record_payment_(r).await?))
    }
    async fn get_payment(
        &self,
        r: Request<pb::GetPaymentRequest>,
    ) -> Result<Response<pb::GetPaymentResponse>, Status> {
        Ok(Response::new(self.get_payment_(r).await?))
    }
    async fn succeed_payment(
        &self,
        r: Request<pb::SucceedPaymentRequest>,
    ) -> Result<Response<pb::SucceedPaymentResponse>, Status> {
        Ok(Response::new(self.succeed_payment_(r).await?))
    }
    async fn fail_payment(
        &self,
        r: Request<pb::FailPaymentRequest>,
    ) -> Result<Response<pb::FailPaymentResponse>, Status> {
        Ok(Response::new(self.fail_payment_(r).await?))
    }
    async fn refund_payment(
        &self,
        r: Request<pb::RefundPaymentRequest>,
    ) -> Result<Response<pb::RefundPaymentResponse>, Status> {
        Ok(Response::new(self.refund_payment_(r).await?))
    }
}
