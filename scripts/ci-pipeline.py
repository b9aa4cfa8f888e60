#!/usr/bin/env python3
"""Run one pipeline of a README CI file on this machine, the way its CI system would.

    ci-pipeline.py github WORKFLOW.yml WORKDIR RUN_ID
    ci-pipeline.py gitlab GITLAB-CI.yml WORKDIR PIPELINE_ID

scripts/examples uses it to run the multi-job examples of README.md ("A lock across CI jobs").
It implements only what those files use, and fails loudly on anything else:

GitHub Actions: jobs in file order (each must only need earlier jobs); `if:` with always(),
success(), failure(), cancelled(), `needs.JOB.result == '...'`, && and ||; without `if:`, a job
runs when all it needs succeeded. Workflow, job and step `env:`; `run:` steps with `bash -e` (the
runner's default shell), `uses:` steps skipped; step outputs from `$GITHUB_OUTPUT`; job
`outputs:` from `steps.ID.outputs.NAME`; `${{ secrets.NAME }}` from the environment variable
SECRET_NAME, `${{ needs.JOB.outputs.NAME }}` from earlier jobs.

GitLab CI: stages in order, jobs of a stage in file order (one after the other, where GitLab
would run them in parallel); `when: on_success` (the default) or `always`; global and job
`variables:`; `script:` lines with `set -eo pipefail`, each echoed as the runner does; an
`artifacts: reports: dotenv:` file becomes variables of the jobs in later stages.

Each job runs in WORKDIR/workspace (a fresh clone would hold the same stubs) with the caller's
environment plus the CI system's own variables. Prints one line per job (`job NAME: success`);
exits 0 if the pipeline succeeded, 1 if it failed.
"""

import os
import re
import subprocess
import sys

import yaml

EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def fail(message):
    sys.exit(f"ci-pipeline: {message}")


def substitute(text, lookup):
    """Replace each ${{ EXPR }} in text by lookup(EXPR)."""
    return EXPR.sub(lambda m: lookup(m.group(1)), str(text))


def run_script(path, env, cwd, shell):
    return subprocess.run(shell + [path], env=env, cwd=cwd, stdin=subprocess.DEVNULL).returncode


class GitHub:
    def __init__(self, workflow, workdir, run_id):
        self.workflow, self.workdir, self.run_id = workflow, workdir, run_id
        self.results, self.outputs = {}, {}

    def lookup(self, steps=None):
        def value(expr):
            parts = expr.split(".")
            if parts[0] == "secrets" and len(parts) == 2:
                return os.environ.get("SECRET_" + parts[1]) or fail(f"no value for {expr}")
            if parts[0] == "needs" and len(parts) == 4 and parts[2] == "outputs":
                return self.outputs.get(parts[1], {}).get(parts[3], "")
            if parts[0] == "steps" and len(parts) == 4 and parts[2] == "outputs" and steps is not None:
                return steps.get(parts[1], {}).get(parts[3], "")
            fail(f"unsupported expression ${{{{ {expr} }}}}")
        return value

    def should_run(self, name, job, needs):
        failed = any(self.results[n] != "success" for n in needs)
        condition = job.get("if")
        if condition is None:
            return not failed
        expr = str(condition).strip()
        expr = EXPR.sub(lambda m: m.group(1), expr)
        expr = re.sub(r"needs\.([A-Za-z0-9_-]+)\.result", lambda m: repr(self.results[m.group(1)]), expr)
        expr = expr.replace("always()", "True").replace("cancelled()", "False")
        expr = expr.replace("success()", repr(not failed)).replace("failure()", repr(failed))
        expr = expr.replace("&&", " and ").replace("||", " or ")
        if not re.fullmatch(r"(\s|True|False|and|or|not|==|!=|\(|\)|'[a-z]+')*", expr):
            fail(f"job {name}: unsupported if: {condition}")
        return eval(expr, {"__builtins__": {}}, {})

    def run_job(self, name, job):
        env = dict(os.environ)
        env.update(GITHUB_ACTIONS="true", CI="true", GITHUB_RUN_ID=self.run_id, GITHUB_JOB=name,
                   GITHUB_WORKSPACE=os.path.join(self.workdir, "workspace"))
        for scope in (self.workflow.get("env", {}), job.get("env", {})):
            env.update({k: substitute(v, self.lookup()) for k, v in scope.items()})
        steps = {}
        for i, step in enumerate(job.get("steps", [])):
            if "uses" in step:
                continue
            if "run" not in step or step.get("shell") not in (None, "bash"):
                fail(f"job {name}: unsupported step {step}")
            output = os.path.join(self.workdir, f"{self.run_id}-{name}-{i}.output")
            script = os.path.join(self.workdir, f"{self.run_id}-{name}-{i}.sh")
            open(output, "w").close()
            with open(script, "w") as f:
                f.write(substitute(step["run"], self.lookup(steps)))
            step_env = dict(env, GITHUB_OUTPUT=output)
            step_env.update({k: substitute(v, self.lookup(steps)) for k, v in step.get("env", {}).items()})
            if run_script(script, step_env, env["GITHUB_WORKSPACE"], ["bash", "-e"]) != 0:
                return "failure"
            with open(output) as f:
                pairs = [line.rstrip("\n").split("=", 1) for line in f if "=" in line]
            steps[step.get("id", str(i))] = dict(pairs)
        self.outputs[name] = {k: substitute(v, self.lookup(steps)) for k, v in job.get("outputs", {}).items()}
        return "success"

    def run(self):
        for name, job in self.workflow["jobs"].items():
            needs = job.get("needs", [])
            needs = [needs] if isinstance(needs, str) else needs
            if any(n not in self.results for n in needs):
                fail(f"job {name} needs a job that comes later in the file")
            self.results[name] = self.run_job(name, job) if self.should_run(name, job, needs) else "skipped"
            print(f"job {name}: {self.results[name]}", flush=True)
        return all(r != "failure" for r in self.results.values())


class GitLab:
    RESERVED = {"stages", "variables", "default", "workflow", "include", "image", "services",
                "before_script", "after_script", "cache"}

    def __init__(self, config, workdir, pipeline_id):
        self.config, self.workdir, self.pipeline_id = config, workdir, pipeline_id
        self.dotenv = {}

    def run_job(self, name, job):
        workspace = os.path.join(self.workdir, "workspace")
        env = dict(os.environ)
        env.update(GITLAB_CI="true", CI="true", CI_PIPELINE_ID=self.pipeline_id, CI_JOB_NAME=name,
                   CI_PIPELINE_URL=f"https://gitlab.example.com/example/app/-/pipelines/{self.pipeline_id}",
                   CI_PROJECT_DIR=workspace)
        env.update({k: str(v) for k, v in self.config.get("variables", {}).items()})
        env.update(self.dotenv)
        env.update({k: str(v) for k, v in job.get("variables", {}).items()})
        script = os.path.join(self.workdir, f"{self.pipeline_id}-{name}.sh")
        with open(script, "w") as f:
            f.write("set -eo pipefail\n")
            for line in job["script"]:
                f.write(f"echo {quote('$ ' + line)}\n{line}\n")
        ok = run_script(script, env, workspace, ["bash"]) == 0
        dotenv = job.get("artifacts", {}).get("reports", {}).get("dotenv")
        if ok and dotenv:
            with open(os.path.join(workspace, dotenv)) as f:
                self.dotenv.update(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
            os.remove(os.path.join(workspace, dotenv))  # an artifact, not left in the next clone
        return "success" if ok else "failed"

    def run(self):
        failed = False
        for stage in self.config["stages"]:
            for name, job in self.config.items():
                if name in self.RESERVED or job.get("stage") != stage:
                    continue
                when = job.get("when", "on_success")
                if when not in ("on_success", "always"):
                    fail(f"job {name}: unsupported when: {when}")
                result = self.run_job(name, job) if when == "always" or not failed else "skipped"
                failed |= result == "failed"
                print(f"job {name}: {result}", flush=True)
        return not failed


def quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in ("github", "gitlab"):
        fail(__doc__.strip().splitlines()[2])
    kind, path, workdir, run_id = sys.argv[1:]
    with open(path) as f:
        config = yaml.safe_load(f)
    runner = GitHub(config, workdir, run_id) if kind == "github" else GitLab(config, workdir, run_id)
    sys.exit(0 if runner.run() else 1)


if __name__ == "__main__":
    main()
