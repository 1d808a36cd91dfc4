"""`dlptui pipeline ...`, `dlptui jobs` and `dlptui job ...`: Pachyderm pipelines, their jobs and datums.

    dlptui pipeline create -f SPEC | list | inspect NAME | stop NAME | start NAME | delete NAME [--yes]
    dlptui pipeline loop on|off|status   the loop with the gate in it (cli/loop.py)
    dlptui jobs [PIPELINE]
    dlptui job ID [--wait]             the job with its datums
    dlptui job restart ID              run its failed datums again (on pachd: in a new job of the pipeline)
    dlptui job logs ID [--datum D]     what its code wrote
(`pipeline delete` asks on a terminal; --yes answers for scripts; --json on every command)
"""

from __future__ import annotations

import sys

from dlptui import text
from dlptui.cli.output import confirm, emit_json, emit_object, emit_table, say
from dlptui.errors import InvalidInput
from dlptui.platform.model import to_dict
from dlptui.render import pipelines as render

JOB_VERBS = ("describe", "restart", "logs")


def register(sub) -> None:
    pp = sub.add_parser("pipeline", aliases=["pp"], help="pipelines in Pachyderm's spec format: create, list, stop, start")
    verbs = pp.add_subparsers(dest="verb", metavar="VERB", required=True)

    def verb(name: str, func, help: str, named: bool = True):
        p = verbs.add_parser(name, help=help)
        if named:
            p.add_argument("name", metavar="NAME")
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=func)
        return p

    p = verb("create", create, "create a pipeline from a spec file (JSON or YAML, as pachctl takes it)", named=False)
    p.add_argument("-f", "--file", required=True, metavar="SPEC",
                   help="a spec file given as a path (./x.json, specs/x.yaml), or a shipped spec by its bare name "
                        "(dogs-and-cats-retrain: retrain on commit; a file of that name here is not read: give ./NAME)")
    verb("list", list_pipelines, "the pipelines, their inputs, outputs and last jobs", named=False)
    verb("inspect", inspect, "one pipeline with its spec")
    verb("stop", stop, "start no new job; kill the running one")
    verb("start", start, "run jobs again")
    p = verb("delete", delete, "delete a pipeline, its jobs and its output repo (asks first)")
    p.add_argument("--yes", action="store_true", help="do not ask")
    from dlptui.cli import loop

    loop.register_verb(verbs)

    j = sub.add_parser("jobs", help="the jobs of every pipeline (or one), newest first")
    j.add_argument("pipeline", nargs="?", metavar="PIPELINE")
    j.add_argument("--json", action="store_true", help="print a JSON array")
    j.set_defaults(func=jobs)

    job = sub.add_parser("job", help="a job with its datums: job ID [--wait] | job restart ID | job logs ID [--datum D]")
    job.add_argument("words", nargs="+", metavar="[VERB] ID", help=f"a job id (or a prefix), after a verb: {', '.join(JOB_VERBS)}")
    job.add_argument("--wait", action="store_true", help="return once the job has ended")
    job.add_argument("--timeout", type=float, default=600.0, help="how long --wait waits, in seconds (default 600)")
    job.add_argument("--datum", metavar="D", help="logs: only this datum's (an id or a prefix)")
    job.add_argument("--json", action="store_true", help="print JSON")
    job.set_defaults(func=job_command)


# --- pipelines ----------------------------------------------------------------------------


def create(args, platform) -> int:
    from dlptui.actions.pipelines import create_from_file

    pipeline = create_from_file(platform.pipelines, args.file)
    if args.json:
        emit_object(pipeline, True)
    else:
        say(f"Created pipeline {pipeline.name!r}: {', '.join(pipeline.inputs)} -> {pipeline.output}.")
        say(pipeline.detail)
    return 0


def list_pipelines(args, platform) -> int:
    emit_table(platform.pipelines.list_pipelines(), render.PIPELINE_COLUMNS, args.json)
    return 0


def inspect(args, platform) -> int:
    """The pipeline's describe block (its whole spec with --json)."""
    emit_object(platform.pipelines.inspect_pipeline(args.name), args.json)
    return 0


def stop(args, platform) -> int:
    pipeline = platform.pipelines.stop_pipeline(args.name)
    emit_object(pipeline, True) if args.json else say(f"Pipeline {pipeline.name!r} stopped: no new job starts.")
    return 0


def start(args, platform) -> int:
    pipeline = platform.pipelines.start_pipeline(args.name)
    emit_object(pipeline, True) if args.json else say(f"Pipeline {pipeline.name!r} runs again.")
    return 0


def delete(args, platform) -> int:
    pipeline = platform.pipelines.inspect_pipeline(args.name)
    jobs = platform.pipelines.list_jobs(pipeline.name)
    question = (f"Delete pipeline {pipeline.name!r}, its {text.plural(len(jobs), 'job')} and its output repo "
                f"{pipeline.name!r} with every commit?")
    if not confirm(question, args.yes, f"Not deleting pipeline {pipeline.name!r}"):
        say(f"Pipeline {pipeline.name!r} kept.", file=sys.stderr)
        return 1
    platform.pipelines.delete_pipeline(pipeline.name)
    if args.json:
        emit_json({"deleted": pipeline.name, "jobs": len(jobs), "output_repo": pipeline.name})
    else:
        say(f"Deleted pipeline {pipeline.name!r}, {text.plural(len(jobs), 'job')} and repo {pipeline.name!r}.",
              file=sys.stderr)
    return 0


# --- jobs -----------------------------------------------------------------------------------


def jobs(args, platform) -> int:
    emit_table(platform.pipelines.list_jobs(args.pipeline), render.JOB_COLUMNS, args.json)
    return 0


def job_command(args, platform) -> int:
    words = args.words
    verb, rest = (words[0], words[1:]) if words[0] in JOB_VERBS else ("describe", words)
    if len(rest) != 1:
        raise InvalidInput(f"`dlptui job {verb}` takes one job id; see `dlptui job --help`.")
    job_id = rest[0]
    if verb == "restart":
        job = platform.pipelines.restart_job(job_id)
        if args.wait:
            from dlptui.actions.pipelines import wait_job

            job = wait_job(platform.pipelines, job.id, args.timeout)
        if args.json:
            emit_object(job, True)
        elif job.id.rpartition("@")[2].startswith(job_id.rpartition("@")[2]):
            say(f"Job {job.id} runs its failed datums again ({job.state.value}).")
        else:  # pachd reruns a pipeline, never a finished job: a new job of the pipeline does it
            say(f"Job {job.id} runs the failed datums of job {job_id} again ({job.state.value}).")
        return 0 if not args.wait or job.state.value == "success" else 1
    if verb == "logs":
        lines = platform.pipelines.job_logs(job_id, args.datum)
        if args.json:
            emit_json(lines)
        else:
            for line in lines:
                say(line)
        return 0
    job = platform.pipelines.inspect_job(job_id)
    if args.wait:
        from dlptui.actions.pipelines import wait_job

        job = wait_job(platform.pipelines, job.id, args.timeout)
    datums = platform.pipelines.list_datums(job.id)
    if args.json:
        emit_json({**to_dict(job), "datums_list": to_dict(datums)})
    else:
        emit_object(job, False)
        say()
        emit_table(datums, render.DATUM_COLUMNS, False)
    return 0 if not args.wait or job.state.value == "success" else 1
