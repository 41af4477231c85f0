import json, sys, jinja2
sys.path.insert(0, "/tmp/oldrefl")
from pathlib import Path
from clin.envs.scienceworld import ScienceWorld
from clin.memory import Memory, estimate_tokens, render
from clin.trials.runner import AdaptConfig, run_adapt
from clin.agent import AgentSettings
from clin.llm import ScriptedLLM
from tests.test_reflection_input import Walker
from bench.tokens import chat_text
from clin.llm.base import Message

env = jinja2.Environment(loader=jinja2.FileSystemLoader("/tmp/oldrefl"), trim_blocks=True, lstrip_blocks=True)
def clip(t, n): t=" ".join(t.split()); return t if len(t)<=n else t[:n-3]+"..."
def old_prompt(task, previous, steps, trial, score, outcome):
    items=[dict(idx=i, action=a, observation=clip(o or "",160), reward=r or 0) for i,a,o,r in steps]
    kept=[]; used=0
    for h in reversed(items):
        c=estimate_tokens(h["action"])+estimate_tokens(h["observation"])+6
        if used+c>2500: break
        kept.append(h); used+=c
    kept.reverse()
    sys_=env.get_template("reflection_system.j2").render(max_learnings=12, structured=False).strip()
    user=env.get_template("reflection_user.j2").render(task=task, previous=previous, trace=kept, steps=len(items), omitted=len(items)-len(kept), trial=trial, score=score, outcome=outcome).strip()
    return chat_text([Message(role="system",content=sys_),Message(role="user",content=user)]), len(kept)

db = Path("/tmp/m100.db"); db.unlink(missing_ok=True)
out = {}
with ScienceWorld() as sw, Memory(db) as mem:
    for n in (100, 100, 100, 100):
        w = Walker(); llm = ScriptedLLM([w]*500)
        cfg = AdaptConfig(task="grow-plant", variation=0, trials=1, settings=AgentSettings(max_steps=n))
        s = run_adapt(cfg, env=sw, llm=llm, mem=mem)
        tid = s.trials[0].trial_id
        new = chat_text(llm.calls[-1])
        steps = mem.conn.execute("SELECT idx, action, observation, reward FROM steps WHERE trial_id=? ORDER BY idx",[tid]).fetchall()
        # old: previous = memory rendered before this reflection (approx: current minus this trial's) -> use memory text at start
        oldp, kept = old_prompt(sw.task_description(), "", steps, 1, s.trials[0].score, "incomplete")
        print(f"trial {len(out)+1}: steps {len(steps)} new {estimate_tokens(new)} tokens; old {estimate_tokens(oldp)} tokens (kept last {kept} steps)")
        out[len(out)+1] = new
Path("/tmp/new_prompt_t4.txt").write_text(out[4]); Path("/tmp/new_prompt_t1.txt").write_text(out[1])
