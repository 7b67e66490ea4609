"""Residents' whole conversations for the load benchmark: mixed intents, flows to the end,
status queries, greetings and hand-offs, as residents type them."""

from __future__ import annotations

import random

CONVERSATIONS: list[list[str]] = [
    ["3号楼2单元楼道灯坏了，晚上黑乎乎的", "1", "没有照片", "13800138001", "确认"],
    ["9栋1单元电梯卡住了有人出不来", "13800138002", "确认"],
    ["小区东门垃圾好几天没人清了，臭得很", "环境卫生", "东门", "13800138003", "确认"],
    ["楼上邻居天天半夜剁东西吵得睡不着，想请人来调解一下", "邻居", "噪音扰民", "说过了没用", "周六上午", "13800138004", "确认"],
    ["明天中午给我妈订个助餐", "王秀英", "82", "5号楼1单元301", "少盐", "13800138005", "确认"],
    ["我想报名当志愿者", "李明", "13800138006", "会修电器", "周末", "1 3", "是", "同意", "确认"],
    ["我的工单怎么样了"],
    ["你好"],
    ["11栋3单元601家里水管爆了，水漫出来了", "13800138007", "确认"],
    ["谢谢你们，上次路灯修好了很满意"],
    ["转人工"],
    ["帮助"],
]


def pick(rng: random.Random) -> list[str]:
    """One conversation, with the closing 取消 so the next one starts clean."""
    return [*rng.choice(CONVERSATIONS), "取消"]
