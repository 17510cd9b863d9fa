"""/v1/messages: create tracked messages, read them back, their copies as MIME, and their numbers."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta

from fastapi import APIRouter, HTTPException, Response

from mailbeacon.api.auth import AccountDep, ServicesDep
from mailbeacon.api.schemas import (
    AddressIn,
    AttemptOut,
    CountsOut,
    HumanAndAllOut,
    LinkOut,
    LinkStatsOut,
    MessageCreated,
    MessageIn,
    MessageOut,
    MessageStatsOut,
    OpensFromClicksOut,
    RatesOut,
    RecipientDetail,
    RecipientOut,
    ResourceId,
    SkippedLinkOut,
    TrackingReport,
)
from mailbeacon.events import RecipientStatus
from mailbeacon.messages.draft import Address, MessageDraft
from mailbeacon.messages.mime import render_copy
from mailbeacon.messages.service import Sending, create_message
from mailbeacon.store.deliveries import list_attempts
from mailbeacon.store.events import HumanAndAll, message_stats
from mailbeacon.store.messages import get_message, get_recipient, list_links, list_recipients

router = APIRouter(prefix="/v1/messages", tags=["messages"])

NOT_FOUND = "no such message in this account"


@router.post("", status_code=201, response_model=MessageCreated, summary="Create a tracked message")
def post_message(body: MessageIn, account: AccountDep, services: ServicesDep) -> MessageCreated:
    """Rewrite once, store the message and one tracked copy per recipient, and say what was tracked."""
    draft = MessageDraft(
        sender=Address(body.from_.email, body.from_.name),
        to=tuple(Address(r.email, r.name) for r in body.to),
        subject=body.subject,
        html=body.html,
        text=body.text,
        headers=body.headers,
        campaign=body.campaign,
        tags=tuple(body.tags),
        metadata=body.metadata,
        track_opens=body.track_opens,
        track_clicks=body.track_clicks,
        track_unsubscribes=body.track_unsubscribes,
    )
    sending = Sending(timedelta(seconds=services.settings.delivery_max_age_s)) if body.send else None
    created = create_message(services.store, account, draft, services.base_url, sending=sending)
    if sending is not None:
        services.on_queued()
    content = created.content
    fresh = RecipientStatus.QUEUED if sending else RecipientStatus.CREATED
    return MessageCreated(
        id=created.id,
        recipients=[
            RecipientOut(
                id=r.id,
                email=r.email,
                name=r.name,
                suppressed=r.suppressed,
                status=RecipientStatus.DROPPED if r.suppressed else fresh,
            )
            for r in created.recipients
        ],
        tracking=TrackingReport(
            opens=content.has_pixel,
            clicks=bool(created.policy["track_clicks"]),
            unsubscribes=bool(created.policy["track_unsubscribes"]),
            links_tracked=len(content.links),
            links=[
                LinkOut(position=link.position, url=link.url, occurrences=link.occurrences)
                for link in content.links
            ],
            skipped=[
                SkippedLinkOut(part=s.part, url=s.url, line=s.line, tag=s.tag, reason=s.reason)
                for s in content.skipped
            ],
        ),
    )


@router.get("/{message_id}", response_model=MessageOut, summary="A message")
def get_message_route(message_id: ResourceId, account: AccountDep, services: ServicesDep) -> MessageOut:
    with services.store.read() as conn:
        message = get_message(conn, account.id, message_id)
        if message is None:
            raise HTTPException(404, NOT_FOUND)
        link_rows = list_links(conn, account.id, message_id)
    return MessageOut(
        id=message.id,
        created_at=message.created_at,
        from_=AddressIn(email=message.from_email, name=message.from_name),
        subject=message.subject,
        campaign=message.campaign,
        tags=message.tags,
        metadata=message.metadata,
        message_id_header=message.message_id_header,
        thread_id=message.thread_id,
        track_opens=message.track_opens,
        track_clicks=message.track_clicks,
        track_unsubscribes=message.track_unsubscribes,
        links=[LinkOut(position=p, url=u, occurrences=n) for p, u, n in link_rows],
    )


@router.get("/{message_id}/recipients", response_model=list[RecipientDetail], summary="Its recipients")
def get_recipients(
    message_id: ResourceId, account: AccountDep, services: ServicesDep
) -> list[RecipientDetail]:
    with services.store.read() as conn:
        if get_message(conn, account.id, message_id) is None:
            raise HTTPException(404, NOT_FOUND)
        rows = list_recipients(conn, account.id, message_id)
    return [RecipientDetail.model_validate(asdict(r)) for r in rows]


@router.get(
    "/{message_id}/recipients/{recipient_id}/mime",
    summary="One recipient's tracked copy as MIME",
    response_class=Response,
    responses={200: {"content": {"message/rfc822": {}}, "description": "The tracked RFC 5322 message."}},
)
def get_copy_mime(
    message_id: ResourceId, recipient_id: ResourceId, account: AccountDep, services: ServicesDep
) -> Response:
    """The finished, tracked message for one recipient, for senders who deliver it themselves."""
    with services.store.read() as conn:
        message = get_message(conn, account.id, message_id)
        recipient = get_recipient(conn, account.id, message_id, recipient_id) if message else None
        link_rows = list_links(conn, account.id, message_id)
    if message is None or recipient is None:
        raise HTTPException(404, "no such recipient of this message in this account")
    if recipient.status == RecipientStatus.DROPPED:
        raise HTTPException(409, f"not to be sent: {recipient.status_detail or 'dropped'}")
    stored_links = [(position, url) for position, url, _occurrences in link_rows]
    mime = render_copy(message, recipient, services.tracking_urls(message.policy), stored_links)
    return Response(
        mime,
        media_type="message/rfc822",
        headers={"Content-Disposition": f'attachment; filename="message-{message_id}-{recipient_id}.eml"'},
    )


@router.get(
    "/{message_id}/recipients/{recipient_id}/attempts",
    response_model=list[AttemptOut],
    summary="Every delivery attempt of one copy",
)
def get_attempts(
    message_id: ResourceId, recipient_id: ResourceId, account: AccountDep, services: ServicesDep
) -> list[AttemptOut]:
    """When each attempt was made, which host and address it reached, over TLS or not, and the reply."""
    with services.store.read() as conn:
        if get_recipient(conn, account.id, message_id, recipient_id) is None:
            raise HTTPException(404, "no such recipient of this message in this account")
        attempts = list_attempts(conn, account.id, recipient_id)
    return [
        AttemptOut(
            started_at=a.started_at,
            duration_ms=a.duration_ms,
            outcome=a.outcome,
            host=a.host,
            ip=a.ip,
            port=a.port,
            tls=a.tls,
            code=a.code,
            enhanced_code=a.enhanced_code,
            reply=a.reply,
        )
        for a in attempts
    ]


def _counts(value: HumanAndAll) -> HumanAndAllOut:
    return HumanAndAllOut(
        all=CountsOut(total=value.all.total, unique=value.all.unique),
        human=CountsOut(total=value.human.total, unique=value.human.unique),
    )


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


@router.get("/{message_id}/stats", response_model=MessageStatsOut, summary="Its numbers")
def get_stats(message_id: ResourceId, account: AccountDep, services: ServicesDep) -> MessageStatsOut:
    with services.store.read(snapshot=True) as conn:
        if get_message(conn, account.id, message_id) is None:
            raise HTTPException(404, NOT_FOUND)
        stats = message_stats(conn, account.id, message_id)
    n = stats.recipients - stats.statuses.get(RecipientStatus.DROPPED.value, 0)
    return MessageStatsOut(
        message_id=message_id,
        recipients=stats.recipients,
        statuses=stats.statuses,
        opens=_counts(stats.opens),
        opens_from_clicks=OpensFromClicksOut(
            all=stats.opens_from_clicks.all, human=stats.opens_from_clicks.human
        ),
        clicks=_counts(stats.clicks),
        unsubscribes=stats.unsubscribes,
        rates=RatesOut(
            open_rate=_rate(stats.opens.human.unique, n),
            click_rate=_rate(stats.clicks.human.unique, n),
            open_rate_all=_rate(stats.opens.all.unique, n),
            click_rate_all=_rate(stats.clicks.all.unique, n),
        ),
        links=[
            LinkStatsOut(
                position=link.position,
                url=link.url,
                occurrences=link.occurrences,
                clicks=_counts(link.clicks),
            )
            for link in stats.links
        ],
    )
