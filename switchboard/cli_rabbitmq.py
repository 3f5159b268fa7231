"""``switchboard rabbitmq-policy``: print, or apply on a broker node, the policy that puts our queues on
classic queue version 2 (switchboard/rabbitmq_policy.py says why)."""

from __future__ import annotations

import click


@click.command("rabbitmq-policy")
@click.option("--vhost", default=None, help="Default: the vhost of SWITCHBOARD_BROKER_URL.")
@click.option("--priority", type=int, default=0, show_default=True,
              help="Above another policy that matches the queues (the highest priority wins).")
@click.option("--apply", "do_apply", is_flag=True, help="Run rabbitmqctl here instead of printing its command.")
def rabbitmq_policy(vhost: str | None, priority: int, do_apply: bool) -> None:
    """Put the queues on classic queue version 2 (RabbitMQ 3.10-3.12; 3.13+ use it already)."""
    from kombu import Connection

    from switchboard import rabbitmq_policy as policy
    from switchboard.broker import is_rabbitmq
    from switchboard.cli import load_settings
    from tasks.app import ALL_QUEUES

    if vhost is None:
        broker_url = load_settings().broker_url
        if not is_rabbitmq(broker_url):
            raise click.ClickException(f"the broker is {broker_url.split(':', 1)[0]}, not RabbitMQ: give --vhost to "
                                       "print the command for a RabbitMQ vhost")
        vhost = Connection(broker_url).virtual_host or "/"
    args = policy.set_policy_args(vhost, ALL_QUEUES, priority)
    if not do_apply:
        click.echo(policy.command_line(args))
        return
    try:
        policy.rabbitmqctl(args)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"policy {policy.POLICY_NAME} set on vhost {vhost}: {', '.join(ALL_QUEUES)} use queue version 2")
