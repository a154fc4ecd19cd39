-- Idempotency keys are now scoped by the request's protobuf type
-- (e.g. throughcare.referrals.v1.NotifyReleaseRequest) rather than a name
-- written by hand (NotifyRelease). Keys stored before keep answering their
-- replays: their operations are renamed to the new names.
UPDATE idempotency_keys SET operation = CASE operation
    WHEN 'NotifyRelease' THEN 'throughcare.referrals.v1.NotifyReleaseRequest'
    WHEN 'ReverseRelease' THEN 'throughcare.referrals.v1.ReverseReleaseRequest'
    WHEN 'NotifyReception' THEN 'throughcare.referrals.v1.NotifyReceptionRequest'
    WHEN 'NotifyTransfer' THEN 'throughcare.referrals.v1.NotifyTransferRequest'
    WHEN 'NotifyCommunitySentence' THEN 'throughcare.referrals.v1.NotifyCommunitySentenceRequest'
    WHEN 'NotifyApprovedPremisesMove' THEN 'throughcare.referrals.v1.NotifyApprovedPremisesMoveRequest'
    WHEN 'NotifySupervisionEnd' THEN 'throughcare.referrals.v1.NotifySupervisionEndRequest'
    WHEN 'NotifyDeath' THEN 'throughcare.referrals.v1.NotifyDeathRequest'
    WHEN 'RecordAssessment' THEN 'throughcare.referrals.v1.RecordAssessmentRequest'
    WHEN 'RequestReferral' THEN 'throughcare.referrals.v1.RequestReferralRequest'
    WHEN 'UpdateReferral' THEN 'throughcare.referrals.v1.UpdateReferralRequest'
    WHEN 'AcknowledgeAlert' THEN 'throughcare.referrals.v1.AcknowledgeAlertRequest'
    WHEN 'RecordConsent' THEN 'throughcare.sharing.v1.RecordConsentRequest'
    WHEN 'WithdrawConsent' THEN 'throughcare.sharing.v1.WithdrawConsentRequest'
    WHEN 'RegisterAgreement' THEN 'throughcare.sharing.v1.RegisterAgreementRequest'
    WHEN 'RevokeAgreement' THEN 'throughcare.sharing.v1.RevokeAgreementRequest'
    WHEN 'RecordStructureIndicator' THEN 'throughcare.indicators.v1.RecordStructureIndicatorRequest'
    ELSE operation
END
WHERE operation IN ('NotifyRelease', 'ReverseRelease', 'NotifyReception', 'NotifyTransfer', 'NotifyCommunitySentence', 'NotifyApprovedPremisesMove', 'NotifySupervisionEnd', 'NotifyDeath', 'RecordAssessment', 'RequestReferral', 'UpdateReferral', 'AcknowledgeAlert', 'RecordConsent', 'WithdrawConsent', 'RegisterAgreement', 'RevokeAgreement', 'RecordStructureIndicator');
