"""``scalesim bench live``: a trace v1 driven against real ``scalesim serve`` processes.

``prompts`` turns trace segments into text the tiny model's tokenizer encodes to exactly the
stated tokens; ``driver`` issues calls (lockstep or out of order) and distance ticks in the
order the simulation would; ``run`` starts one server per policy and collects the results;
``report`` prints and writes them (JSON, Markdown, PNG) beside the replay's prediction.
"""
