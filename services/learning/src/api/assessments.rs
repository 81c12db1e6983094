use lyceum_platform::auth::{Principal, PrincipalKind, require_principal};
use lyceum_platform::convert::{optional_id, page_size, parse_id, required_id};
use lyceum_platform::{ApiError, Violations};
use lyceum_proto::learning::v1 as pb;
use lyceum_proto::learning::v1::assessment_service_server::AssessmentService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{LearningApi, decode_position, paginate, wire};
use crate::domain::BoundedText;
use crate::domain::assessment::{
    AnswerType, AssessmentRefusal, AssessmentType, Dimension, MAX_QUESTIONS, Weight, advice,
    decide_change, decide_complete, parse_answer_value, recommendations,
};
use crate::events::assessments::assessment_completed;
use crate::store::Tx;
use crate::store::assessments::{self, AssessmentRow, NewQuestion, SumsDelta};

type Name = BoundedText<200, true>;
type Description = BoundedText<5000, false>;
type Prompt = BoundedText<2000, true>;
type OptionText = BoundedText<200, true>;
type TextAnswer = BoundedText<5000, false>;

/// The trend's default and longest span, in months.
const DEFAULT_TREND_MONTHS: i32 = 12;
const MAX_TREND_MONTHS: i32 = 36;

impl From<AssessmentRefusal> for ApiError {
    fn from(refusal: AssessmentRefusal) -> Self {
        match refusal {
            AssessmentRefusal::NotOwner => ApiError::PermissionDenied(refusal.to_string()),
            AssessmentRefusal::NotInProgress(_) | AssessmentRefusal::NothingAnswered => {
                ApiError::FailedPrecondition(refusal.to_string())
            }
        }
    }
}

fn required_enum<T>(
    v: &mut Violations,
    field: &str,
    raw: i32,
    parse: fn(i32) -> Result<T, String>,
) -> Option<T> {
    if raw == 0 {
        v.add(field, "is required");
        return None;
    }
    v.check(field, parse(raw))
}

/// A CreateTemplate request, validated: every field's violation at once.
struct CreateTemplate {
    organization_id: Option<Uuid>,
    name: String,
    description: String,
    questions: Vec<NewQuestion>,
}

fn parse_question(v: &mut Violations, index: usize, q: &pb::Question) -> Option<NewQuestion> {
    let field = |name: &str| format!("template.questions[{index}].{name}");
    let dimension = required_enum(v, &field("dimension"), q.dimension, Dimension::from_proto);
    let answer_type = required_enum(
        v,
        &field("answer_type"),
        q.answer_type,
        AnswerType::from_proto,
    );
    let prompt = v.check(&field("prompt"), Prompt::parse(&q.prompt));
    let weight = v.check(&field("weight"), Weight::parse(q.weight));
    let mut options = Vec::with_capacity(q.options.len());
    if q.options.len() > 20 {
        v.add(field("options"), "must have at most 20 choices");
    }
    for option in &q.options {
        match OptionText::parse(option) {
            Ok(o) => options.push(o.into_inner()),
            Err(e) => v.add(field("options"), e),
        }
    }
    match answer_type {
        Some(AnswerType::MultipleChoice) if q.options.len() < 2 => v.add(
            field("options"),
            "a multiple-choice question has at least 2 choices",
        ),
        Some(t) if t != AnswerType::MultipleChoice && !q.options.is_empty() => v.add(
            field("options"),
            "only multiple-choice questions have choices",
        ),
        _ => {}
    }
    if answer_type == Some(AnswerType::Text) && weight.is_some_and(|w| w.milli() != 0) {
        v.add(
            field("weight"),
            "a text question is never scored: its weight is 0",
        );
    }
    Some(NewQuestion {
        dimension: dimension?,
        answer_type: answer_type?,
        prompt: prompt?.into_inner(),
        options,
        weight: weight?,
    })
}

impl TryFrom<pb::CreateTemplateRequest> for CreateTemplate {
    type Error = ApiError;

    fn try_from(req: pb::CreateTemplateRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let Some(t) = req.template else {
            return Err(ApiError::invalid("template", "is required"));
        };
        let organization_id = optional_id(&mut v, "template.organization_id", &t.organization_id);
        let name = v.check("template.name", Name::parse(&t.name));
        let description = v.check("template.description", Description::parse(&t.description));
        if t.questions.is_empty() || t.questions.len() > MAX_QUESTIONS {
            v.add("template.questions", "must have 1 to 200 questions");
        }
        let questions: Vec<Option<NewQuestion>> = t
            .questions
            .iter()
            .enumerate()
            .map(|(i, q)| parse_question(&mut v, i, q))
            .collect();
        v.into_result()?;
        Ok(Self {
            organization_id: organization_id.flatten(),
            name: name.expect("parsed").into_inner(),
            description: description.expect("parsed").into_inner(),
            questions: questions.into_iter().map(|q| q.expect("parsed")).collect(),
        })
    }
}

/// An AnswerQuestion request, validated as far as it can be without the question.
struct AnswerQuestion {
    assessment_id: Uuid,
    question_id: Uuid,
    value: Option<i16>,
    text: Option<String>,
}

impl TryFrom<pb::AnswerQuestionRequest> for AnswerQuestion {
    type Error = ApiError;

    fn try_from(req: pb::AnswerQuestionRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let assessment_id = required_id(&mut v, "assessment_id", &req.assessment_id);
        let question_id = required_id(&mut v, "question_id", &req.question_id);
        let value = req
            .value
            .and_then(|raw| v.check("value", parse_answer_value(raw)));
        // Which of the two the question takes is checked once it is loaded.
        let text = v.check("text", TextAnswer::parse(&req.text));
        v.into_result()?;
        Ok(Self {
            assessment_id: assessment_id.expect("parsed"),
            question_id: question_id.expect("parsed"),
            value,
            text: text.map(BoundedText::into_inner).filter(|t| !t.is_empty()),
        })
    }
}

/// The recommendations of a completed assessment, as stored (hundredths, exactly).
fn recommendations_json(row: &AssessmentRow) -> serde_json::Value {
    serde_json::Value::Array(
        recommendations(&row.scores())
            .into_iter()
            .map(|(dimension, score)| {
                serde_json::json!({
                    "dimension": dimension.as_str(),
                    "score_hundredths": score,
                    "text": advice(dimension),
                })
            })
            .collect(),
    )
}

impl LearningApi {
    /// The assessment locked for a change by its owner while in progress; NOT_FOUND when
    /// the caller cannot lock it (the policies leave only owners and platform admins that).
    async fn changeable_assessment(
        &self,
        tx: &mut Tx,
        principal: &Principal,
        id: Uuid,
    ) -> Result<AssessmentRow, ApiError> {
        let row = assessments::lock_assessment(tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("assessment"))?;
        decide_change(row.status, principal.is_user(row.user_id))?;
        Ok(row)
    }

    async fn reread(&self, tx: &mut Tx, id: Uuid) -> Result<AssessmentRow, ApiError> {
        assessments::get_assessment(tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("assessment"))
    }

    async fn create_template_(
        &self,
        request: Request<pb::CreateTemplateRequest>,
    ) -> Result<pb::CreateTemplateResponse, ApiError> {
        let principal = require_principal(&request)?;
        // Who may create where is decided before the template is validated: a caller
        // without the right learns nothing of the rules.
        let organization = request
            .get_ref()
            .template
            .as_ref()
            .map(|t| t.organization_id.as_str())
            .unwrap_or_default();
        let mut v = Violations::new();
        let organization = optional_id(&mut v, "template.organization_id", organization);
        v.into_result()?;
        let allowed = match organization.flatten() {
            None => principal.has_platform_access(),
            Some(org) => principal.administers(org),
        };
        if !allowed {
            return Err(ApiError::PermissionDenied(
                "platform admins create platform templates, org admins their organization's".into(),
            ));
        }
        let command: CreateTemplate = request.into_inner().try_into()?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        let id = Uuid::now_v7();
        assessments::insert_template(
            &mut tx,
            id,
            command.organization_id,
            principal.subject,
            &command.name,
            &command.description,
        )
        .await?;
        for (position, question) in command.questions.iter().enumerate() {
            let position = i32::try_from(position).expect("at most 200 questions");
            assessments::insert_question(&mut tx, id, position, question).await?;
        }
        let row = assessments::get_template(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("template"))?;
        let questions = assessments::questions_of(&mut tx, id).await?;
        tx.commit().await?;
        Ok(pb::CreateTemplateResponse {
            template: Some(wire::template(row, questions)),
        })
    }

    async fn get_template_(
        &self,
        request: Request<pb::GetTemplateRequest>,
    ) -> Result<pb::GetTemplateResponse, ApiError> {
        let principal = require_principal(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        // The policies leave out other organizations' templates.
        let row = assessments::get_template(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("template"))?;
        let questions = assessments::questions_of(&mut tx, id).await?;
        tx.commit().await?;
        Ok(pb::GetTemplateResponse {
            template: Some(wire::template(row, questions)),
        })
    }

    async fn list_templates_(
        &self,
        request: Request<pb::ListTemplatesRequest>,
    ) -> Result<pb::ListTemplatesResponse, ApiError> {
        let principal = require_principal(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let limit = page_size(&mut v, req.page_size);
        let after = decode_position(&mut v, &req.page_token);
        v.into_result()?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        let rows = assessments::list_templates(&mut tx, after, limit + 1).await?;
        tx.commit().await?;
        let (rows, next_page_token) = paginate(rows, limit, |t| (t.created_at, t.id));
        Ok(pb::ListTemplatesResponse {
            templates: rows
                .into_iter()
                .map(|t| wire::template(t, vec![]))
                .collect(),
            next_page_token,
        })
    }

    async fn start_assessment_(
        &self,
        request: Request<pb::StartAssessmentRequest>,
    ) -> Result<pb::StartAssessmentResponse, ApiError> {
        let principal = require_principal(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let template_id = required_id(&mut v, "template_id", &req.template_id);
        let kind = required_enum(&mut v, "type", req.r#type, AssessmentType::from_proto);
        let organization_id = optional_id(&mut v, "organization_id", &req.organization_id);
        v.into_result()?;
        let (Some(template_id), Some(kind), Some(organization_id)) =
            (template_id, kind, organization_id)
        else {
            unreachable!("parsed when there are no violations")
        };
        if principal.kind != PrincipalKind::User {
            return Err(ApiError::PermissionDenied(
                "assessments are taken by people, not service accounts".into(),
            ));
        }
        if organization_id.is_some() && organization_id != principal.organization_id {
            return Err(ApiError::PermissionDenied(
                "an assessment is taken in the caller's own organization".into(),
            ));
        }
        let mut tx = self.tx_for(Some(&principal)).await?;
        assessments::get_template(&mut tx, template_id)
            .await?
            .ok_or_else(|| ApiError::not_found("template"))?;
        let id = Uuid::now_v7();
        assessments::insert_assessment(
            &mut tx,
            id,
            template_id,
            principal.subject,
            organization_id,
            kind,
        )
        .await?;
        let row = self.reread(&mut tx, id).await?;
        tx.commit().await?;
        Ok(pb::StartAssessmentResponse {
            assessment: Some(wire::assessment(row, vec![])),
        })
    }

    async fn get_assessment_(
        &self,
        request: Request<pb::GetAssessmentRequest>,
    ) -> Result<pb::GetAssessmentResponse, ApiError> {
        let principal = require_principal(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        // The policies show an assessment to its owner and its organization's admins.
        let row = self.reread(&mut tx, id).await?;
        let answers = assessments::answers_of(&mut tx, id).await?;
        tx.commit().await?;
        Ok(pb::GetAssessmentResponse {
            assessment: Some(wire::assessment(row, answers)),
        })
    }

    async fn list_assessments_(
        &self,
        request: Request<pb::ListAssessmentsRequest>,
    ) -> Result<pb::ListAssessmentsResponse, ApiError> {
        let principal = require_principal(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let limit = page_size(&mut v, req.page_size);
        let after = decode_position(&mut v, &req.page_token);
        let organization_id = optional_id(&mut v, "organization_id", &req.organization_id);
        v.into_result()?;
        let organization_id = organization_id.flatten();
        let user_id = match organization_id {
            Some(org) if principal.administers(org) => None,
            Some(_) => {
                return Err(ApiError::PermissionDenied(
                    "an organization's assessments are for its admins".into(),
                ));
            }
            None => Some(principal.subject),
        };
        let mut tx = self.tx_for(Some(&principal)).await?;
        let rows =
            assessments::list_assessments(&mut tx, user_id, organization_id, after, limit + 1)
                .await?;
        tx.commit().await?;
        let (rows, next_page_token) = paginate(rows, limit, |a| (a.started_at, a.id));
        Ok(pb::ListAssessmentsResponse {
            assessments: rows
                .into_iter()
                .map(|a| wire::assessment(a, vec![]))
                .collect(),
            next_page_token,
        })
    }

    async fn answer_question_(
        &self,
        request: Request<pb::AnswerQuestionRequest>,
    ) -> Result<pb::AnswerQuestionResponse, ApiError> {
        let principal = require_principal(&request)?;
        let AnswerQuestion {
            assessment_id,
            question_id,
            value,
            text,
        } = request.into_inner().try_into()?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        // Answers to one assessment run one at a time from here: its sums stay exact.
        let assessment = self
            .changeable_assessment(&mut tx, &principal, assessment_id)
            .await?;
        let question = assessments::question(&mut tx, assessment.template_id, question_id)
            .await?
            .ok_or_else(|| ApiError::not_found("question"))?;
        let scored = question.answer_type.is_scored();
        match (scored, value, &text) {
            (true, None, _) => {
                return Err(ApiError::invalid(
                    "value",
                    format!(
                        "is required (0 to 100) for a {} question",
                        question.answer_type
                    ),
                ));
            }
            (true, Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "text",
                    format!(
                        "a {} question is answered with a value only",
                        question.answer_type
                    ),
                ));
            }
            (false, Some(_), _) => {
                return Err(ApiError::invalid(
                    "value",
                    "a text question is answered with a text",
                ));
            }
            (false, None, None) => {
                return Err(ApiError::invalid(
                    "text",
                    "is required (1 to 5,000 characters) for a text question",
                ));
            }
            _ => {}
        }
        let previous = assessments::answer(&mut tx, assessment_id, question_id).await?;
        assessments::upsert_answer(
            &mut tx,
            assessment_id,
            principal.subject,
            &question,
            value,
            text.as_deref(),
        )
        .await?;
        let contribution = |weight: i64, value: Option<i16>| match value {
            Some(v) => (weight * i64::from(v), weight),
            None => (0, 0),
        };
        let (new_sum, new_weight) = contribution(question.weight_milli, value);
        let (old_sum, old_weight) = previous
            .as_ref()
            .map_or((0, 0), |p| contribution(p.weight_milli, p.value));
        tx.begin_bookkeeping("assessment scores").await?;
        assessments::apply_answer(
            &mut tx,
            assessment_id,
            SumsDelta {
                dimension: question.dimension,
                weighted_sum_milli: new_sum - old_sum,
                weight_total_milli: new_weight - old_weight,
                answers: i32::from(previous.is_none()),
            },
            previous.is_none(),
        )
        .await?;
        tx.end_bookkeeping().await?;
        let row = self.reread(&mut tx, assessment_id).await?;
        tx.commit().await?;
        Ok(pb::AnswerQuestionResponse {
            assessment: Some(wire::assessment(row, vec![])),
        })
    }

    async fn complete_assessment_(
        &self,
        request: Request<pb::CompleteAssessmentRequest>,
    ) -> Result<pb::CompleteAssessmentResponse, ApiError> {
        let principal = require_principal(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        let row = assessments::lock_assessment(&mut tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("assessment"))?;
        decide_complete(row.status, principal.is_user(row.user_id), row.answer_count)?;
        tx.begin_bookkeeping("assessment completion and the organization's month")
            .await?;
        assessments::complete(&mut tx, id, &recommendations_json(&row)).await?;
        tx.end_bookkeeping().await?;
        let row = self.reread(&mut tx, id).await?;
        tx.publish(assessment_completed(&row)).await?;
        tx.commit().await?;
        Ok(pb::CompleteAssessmentResponse {
            assessment: Some(wire::assessment(row, vec![])),
        })
    }

    async fn abandon_assessment_(
        &self,
        request: Request<pb::AbandonAssessmentRequest>,
    ) -> Result<pb::AbandonAssessmentResponse, ApiError> {
        let principal = require_principal(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let mut tx = self.tx_for(Some(&principal)).await?;
        self.changeable_assessment(&mut tx, &principal, id).await?;
        assessments::abandon(&mut tx, id).await?;
        let row = self.reread(&mut tx, id).await?;
        tx.commit().await?;
        Ok(pb::AbandonAssessmentResponse {
            assessment: Some(wire::assessment(row, vec![])),
        })
    }

    async fn get_org_adaptability_trend_(
        &self,
        request: Request<pb::GetOrgAdaptabilityTrendRequest>,
    ) -> Result<pb::GetOrgAdaptabilityTrendResponse, ApiError> {
        let principal = require_principal(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let organization_id = required_id(&mut v, "organization_id", &req.organization_id);
        let months = match req.months {
            0 => DEFAULT_TREND_MONTHS,
            m @ 1..=MAX_TREND_MONTHS => m,
            _ => {
                v.add("months", "must be from 1 to 36");
                DEFAULT_TREND_MONTHS
            }
        };
        v.into_result()?;
        let organization_id = organization_id.expect("parsed");
        if !principal.administers(organization_id) {
            return Err(ApiError::PermissionDenied(
                "an organization's trend is for its admins".into(),
            ));
        }
        let mut tx = self.tx_for(Some(&principal)).await?;
        let rows = assessments::org_trend(&mut tx, organization_id, months).await?;
        tx.commit().await?;
        Ok(pb::GetOrgAdaptabilityTrendResponse {
            months: rows
                .into_iter()
                .map(|m| pb::TrendMonth {
                    month: m.month.format("%Y-%m-%d").to_string(),
                    completed_count: m.completed_count,
                    average_overall_score: m.average.map(crate::domain::assessment::as_points),
                })
                .collect(),
        })
    }
}

#[tonic::async_trait]
impl AssessmentService for LearningApi {
    async fn create_template(
        &self,
        r: Request<pb::CreateTemplateRequest>,
    ) -> Result<Response<pb::CreateTemplateResponse>, Status> {
        Ok(Response::new(self.create_template_(r).await?))
    }
    async fn get_template(
        &self,
        r: Request<pb::GetTemplateRequest>,
    ) -> Result<Response<pb::GetTemplateResponse>, Status> {
        Ok(Response::new(self.get_template_(r).await?))
    }
    async fn list_templates(
        &self,
        r: Request<pb::ListTemplatesRequest>,
    ) -> Result<Response<pb::ListTemplatesResponse>, Status> {
        Ok(Response::new(self.list_templates_(r).await?))
    }
    async fn start_assessment(
        &self,
        r: Request<pb::StartAssessmentRequest>,
    ) -> Result<Response<pb::StartAssessmentResponse>, Status> {
        Ok(Response::new(self.start_assessment_(r).await?))
    }
    async fn get_assessment(
        &self,
        r: Request<pb::GetAssessmentRequest>,
    ) -> Result<Response<pb::GetAssessmentResponse>, Status> {
        Ok(Response::new(self.get_assessment_(r).await?))
    }
    async fn list_assessments(
        &self,
        r: Request<pb::ListAssessmentsRequest>,
    ) -> Result<Response<pb::ListAssessmentsResponse>, Status> {
        Ok(Response::new(self.list_assessments_(r).await?))
    }
    async fn answer_question(
        &self,
        r: Request<pb::AnswerQuestionRequest>,
    ) -> Result<Response<pb::AnswerQuestionResponse>, Status> {
        Ok(Response::new(self.answer_question_(r).await?))
    }
    async fn complete_assessment(
        &self,
        r: Request<pb::CompleteAssessmentRequest>,
    ) -> Result<Response<pb::CompleteAssessmentResponse>, Status> {
        Ok(Response::new(self.complete_assessment_(r).await?))
    }
    async fn abandon_assessment(
        &self,
        r: Request<pb::AbandonAssessmentRequest>,
    ) -> Result<Response<pb::AbandonAssessmentResponse>, Status> {
        Ok(Response::new(self.abandon_assessment_(r).await?))
    }
    async fn get_org_adaptability_trend(
        &self,
        r: Request<pb::GetOrgAdaptabilityTrendRequest>,
    ) -> Result<Response<pb::GetOrgAdaptabilityTrendResponse>, Status> {
        Ok(Response::new(self.get_org_adaptability_trend_(r).await?))
    }
}
