"""The page's words in English and Chinese, and the one `gr.I18n` that serves them."""

from __future__ import annotations

import gradio as gr

EN = {
    "title": "# AI Image Edit · Juhe API 1985",
    "subtitle": "Drop in one to three images, say what to change, and get the edited image back. "
    "Name the images 图1 / 图2 / 图3 (image 1/2/3) when you use more than one.",
    "offline_banner": "**Offline preview** — results are simulated; no API key is configured. "
    "Each result is your 图1 marked *SIMULATED*. Set `JUHE_API_KEY` (or enter your own key below) "
    "for real edits.",
    "live_banner": "**Live** — edits are made by the Juhe image-edit API. Results are saved on the "
    "server as soon as they arrive.",
    "image1": "图1 · Image 1",
    "image2": "图2 · Image 2 (optional)",
    "image3": "图3 · Image 3 (optional)",
    "prompt": "Instruction",
    "prompt_placeholder": "e.g. 把图中的小猫换成小狗 / Replace the cat with a dog. "
    "With several images, refer to them as 图1, 图2, 图3.",
    "size": "Output size",
    "size_auto": "Auto (keep aspect ratio)",
    "size_custom": "Custom…",
    "sq1024": "Square 1:1 · 1024×1024",
    "sq1536": "Square 1:1 · 1536×1536",
    "p34": "Portrait 3:4 · 768×1024",
    "l43": "Landscape 4:3 · 1024×768",
    "p23": "Portrait 2:3 · 832×1248",
    "l32": "Landscape 3:2 · 1248×832",
    "p916": "Portrait 9:16 · 720×1280",
    "l169": "Landscape 16:9 · 1280×720",
    "width": "Width (512–2048)",
    "height": "Height (512–2048)",
    "model": "Model",
    "model_info": "auto unless your account has another model enabled",
    "advanced": "Advanced: image links, model, your own key",
    "url1": "图1 link instead of upload",
    "url2": "图2 link instead of upload",
    "url3": "图3 link instead of upload",
    "url_info": "A public http(s) link; the provider downloads it",
    "api_key": "Your own Juhe API key (optional)",
    "api_key_info": "Used for your edits in this browser tab only. Never stored or logged.",
    "run": "✨ Edit image",
    "results": "Results",
    "compare": "Before / after (图1 vs the selected result)",
    "continue": "↻ Continue editing this result (it becomes 图1)",
    "status_idle": "Results appear here and are saved on the server before the provider's "
    "24-hour links expire.",
    "history": "This session's edits",
    "examples": "Examples (click one to fill the form; nothing runs until you press Edit)",
}

ZH = {
    "title": "# AI 图像编辑 · 聚合数据接口 1985",
    "subtitle": "上传 1 到 3 张图片, 写下想要的修改, 即可得到编辑后的图片。使用多张图片时, "
    "请在描述中用 图1 / 图2 / 图3 指代它们。",
    "offline_banner": "**离线预览** —— 结果为模拟生成; 未配置 API key。每个结果都是你的图1加上 "
    "*SIMULATED* 标记。设置 `JUHE_API_KEY` (或在下方填写你自己的 key) 即可真实编辑。",
    "live_banner": "**在线** —— 编辑由聚合数据 AI 图像编辑接口完成。结果一返回就保存在服务器上。",
    "image1": "图1",
    "image2": "图2 (可选)",
    "image3": "图3 (可选)",
    "prompt": "编辑描述",
    "prompt_placeholder": "例如: 把图中的小猫换成小狗。多张图片时请用 图1、图2、图3 指代。",
    "size": "输出尺寸",
    "size_auto": "自动 (保持原图比例)",
    "size_custom": "自定义…",
    "sq1024": "方形 1:1 · 1024×1024",
    "sq1536": "方形 1:1 · 1536×1536",
    "p34": "竖版 3:4 · 768×1024",
    "l43": "横版 4:3 · 1024×768",
    "p23": "竖版 2:3 · 832×1248",
    "l32": "横版 3:2 · 1248×832",
    "p916": "竖版 9:16 · 720×1280",
    "l169": "横版 16:9 · 1280×720",
    "width": "宽 (512–2048)",
    "height": "高 (512–2048)",
    "model": "模型",
    "model_info": "默认 auto, 除非你的账号开通了其他模型",
    "advanced": "高级: 图片链接、模型、你自己的 key",
    "url1": "图1 链接 (代替上传)",
    "url2": "图2 链接 (代替上传)",
    "url3": "图3 链接 (代替上传)",
    "url_info": "公开的 http(s) 链接, 由服务方下载",
    "api_key": "你自己的聚合数据 API key (可选)",
    "api_key_info": "只用于你在此页面中的编辑, 不会被保存或记录。",
    "run": "✨ 开始编辑",
    "results": "结果",
    "compare": "前后对比 (图1 与选中的结果)",
    "continue": "↻ 继续编辑此结果 (设为图1)",
    "status_idle": "结果会显示在这里, 并在服务方的 24 小时链接过期前保存到服务器。",
    "history": "本次会话的编辑记录",
    "examples": "示例 (点击填入表单; 按下编辑按钮才会运行)",
}

I18N = gr.I18n(en=EN, zh=ZH, **{"zh-CN": ZH, "zh-TW": ZH, "zh-HK": ZH})

# Words returned by handlers at run time, in the visitor's language (from Accept-Language).
RUNTIME = {
    "preparing": ("准备图片…", "Preparing images…"),
    "waiting": ("等待服务返回…", "Waiting for the provider…"),
    "saving": ("保存结果…", "Saving the results…"),
    "done": ("完成", "Done"),
    "order": ("订单", "order"),
    "saved": ("已保存到", "saved to"),
    "simulated": ("模拟结果", "simulated"),
    "failed": (
        "上一次编辑失败 (原因见提示消息); 之前的结果和记录都已保留。",
        "The last edit failed (the message says why); earlier results and history are kept.",
    ),
}


def wants_chinese(accept_language: str | None) -> bool:
    """True when the browser prefers Chinese."""
    first = (accept_language or "").split(",")[0].strip().lower()
    return first.startswith("zh")


def say(key: str, chinese: bool) -> str:
    """One runtime phrase in the visitor's language."""
    zh, en = RUNTIME[key]
    return zh if chinese else en
