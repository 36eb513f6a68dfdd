"""Every word a visitor reads: the page in English and Chinese, runtime phrases, error messages and
the API's description. Limits come from `juhe`, never retyped."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

from juhe import MAX_PROMPT_CHARS, MAX_SIDE, MIN_SIDE

EN = {
    "title": "# AI Image Edit · Juhe API 1985",
    "language": "🌐 中文",  # the language switch names the language it switches to
    "subtitle": "Drop in one to three images (图1 is the one to edit; 图2 and 图3 are optional), say what "
    "to change, and get the edited image back. Name the images 图1 / 图2 / 图3 (image 1/2/3) when you "
    "use more than one.",
    "offline_banner": "**Preview** — results are simulated: each one is your 图1 marked *SIMULATED*. "
    "Paste your own Juhe key under *Advanced* for real edits.",
    "live_banner": "**Live** — edits are made by the Juhe image-edit API. Results are saved on the "
    "server as soon as they arrive.",
    "image1": "图1",
    "image2": "图2",
    "image3": "图3",
    "prompt": "Instruction",
    "prompt_placeholder": "e.g. 把图中的小猫换成小狗 / Replace the cat with a dog. "
    "With several images, refer to them as 图1, 图2, 图3. Ctrl+Enter runs the edit.",
    "size": "Output size",
    "size_auto": "Auto (keep aspect ratio)",
    "size_custom": "Custom…",
    "size_original": "Same as 图1 (its exact size)",
    "sq1024": "Square 1:1 · 1024×1024",
    "sq1536": "Square 1:1 · 1536×1536",
    "p34": "Portrait 3:4 · 768×1024",
    "l43": "Landscape 4:3 · 1024×768",
    "p23": "Portrait 2:3 · 832×1248",
    "l32": "Landscape 3:2 · 1248×832",
    "p916": "Portrait 9:16 · 720×1280",
    "l169": "Landscape 16:9 · 1280×720",
    "width": f"Width ({MIN_SIDE}–{MAX_SIDE})",
    "height": f"Height ({MIN_SIDE}–{MAX_SIDE})",
    "model": "Model",
    "model_info": "auto unless your account has another model enabled",
    "advanced": "Advanced: image links, model, your own key",
    "url1": "图1 link instead of upload",
    "url2": "图2 link instead of upload",
    "url3": "图3 link instead of upload",
    "url_info": "A public http(s) link; the provider downloads it. It is used instead of the upload.",
    "api_key": "Your own Juhe API key (optional)",
    "api_key_info": "Used for your edits in this browser tab only. Never stored or logged.",
    "paint": "🖌 Change only part of 图1",
    "paint_done": "✕ Edit the whole image",
    "region": "Paint over the part of 图1 to change",
    "region_info": "Only the painted area changes: every other pixel stays as in 图1, and the result "
    "has 图1's exact size. The eraser and the bin undo strokes.",
    "run": "✨ Edit image",
    "cancel": "Cancel",
    "result": "Result",
    "results": "All results of this edit (click one)",
    "results_empty": "Your edited image will appear here. Results are saved on the server before the "
    "provider's 24-hour links expire.",
    "compare": "Before / after",
    "continue": "↻ Continue editing this result",
    "api_call": "API call: this edit as code",
    "api_curl": "curl (the provider's API)",
    "api_python": "Python (the juhe client)",
    "api_gradio": "Python (gradio_client, this app)",
    "api_files": "Files the code names (the crop and the mask of this region edit)",
    "history": "Your edits in this browser (click one to open it)",
    "share": "🔗 Share",
    "share_link": "Share link",
    "share_info": "Anyone with this link sees this result, its instruction and its before/after; no "
    "password needed. It expires with the result.",
    "revoke": "Revoke link",
    "delete": "🗑 Delete",
    "examples": "Examples (click one to fill the form; nothing runs until you press Edit)",
    "region_example": "Region edit example (fills 图1 and the painted area)",
}

ZH = {
    "title": "# AI 图像编辑 · 聚合数据接口 1985",
    "language": "🌐 English",
    "subtitle": "上传 1 到 3 张图片（图1是要编辑的图片，图2、图3可选），写下想要的修改，即可得到编辑后的"
    "图片。使用多张图片时，请在描述中用图1 / 图2 / 图3指代它们。",
    "offline_banner": "**预览模式** —— 结果为模拟生成：每个结果都是你的图1加上 *SIMULATED* 标记。"
    "在 *高级* 中填入你自己的聚合数据 key 即可真实编辑。",
    "live_banner": "**在线** —— 编辑由聚合数据 AI 图像编辑接口完成。结果一返回就保存在服务器上。",
    "image1": "图1",
    "image2": "图2",
    "image3": "图3",
    "prompt": "编辑描述",
    "prompt_placeholder": "例如：把图中的小猫换成小狗。多张图片时请用图1、图2、图3指代。"
    "Ctrl+Enter 开始编辑。",
    "size": "输出尺寸",
    "size_auto": "自动（保持原图比例）",
    "size_custom": "自定义…",
    "size_original": "与图1相同（原始尺寸）",
    "sq1024": "方形 1:1 · 1024×1024",
    "sq1536": "方形 1:1 · 1536×1536",
    "p34": "竖版 3:4 · 768×1024",
    "l43": "横版 4:3 · 1024×768",
    "p23": "竖版 2:3 · 832×1248",
    "l32": "横版 3:2 · 1248×832",
    "p916": "竖版 9:16 · 720×1280",
    "l169": "横版 16:9 · 1280×720",
    "width": f"宽（{MIN_SIDE}–{MAX_SIDE}）",
    "height": f"高（{MIN_SIDE}–{MAX_SIDE}）",
    "model": "模型",
    "model_info": "默认 auto，除非你的账号开通了其他模型",
    "advanced": "高级：图片链接、模型、你自己的 key",
    "url1": "图1链接（代替上传）",
    "url2": "图2链接（代替上传）",
    "url3": "图3链接（代替上传）",
    "url_info": "公开的 http(s) 链接，由服务方下载；填写后代替上传的图片。",
    "api_key": "你自己的聚合数据 API key（可选）",
    "api_key_info": "只用于你在此页面中的编辑，不会被保存或记录。",
    "paint": "🖌 只修改图1的一部分",
    "paint_done": "✕ 编辑整张图片",
    "region": "涂抹图1中要修改的区域",
    "region_info": "只有涂抹的区域会改变：其余像素与图1完全相同，结果与图1尺寸一致。"
    "橡皮擦和垃圾桶可撤销涂抹。",
    "run": "✨ 开始编辑",
    "cancel": "取消",
    "result": "结果",
    "results": "本次编辑的全部结果（点击选择）",
    "results_empty": "编辑后的图片会显示在这里，并在服务方的 24 小时链接过期前保存到服务器。",
    "compare": "前后对比",
    "continue": "↻ 继续编辑此结果",
    "api_call": "API 调用：用代码完成这次编辑",
    "api_curl": "curl（服务方接口）",
    "api_python": "Python（juhe 客户端）",
    "api_gradio": "Python（gradio_client，本应用）",
    "api_files": "代码中用到的文件（本次区域编辑的裁剪图和蒙版）",
    "history": "你在此浏览器中的编辑记录（点击打开）",
    "share": "🔗 分享",
    "share_link": "分享链接",
    "share_info": "任何拿到此链接的人都能看到这张结果、编辑描述和前后对比，无需密码；链接随结果一起过期。",
    "revoke": "撤销链接",
    "delete": "🗑 删除",
    "examples": "示例（点击填入表单；按下编辑按钮才会运行）",
    "region_example": "局部编辑示例（填入图1和涂抹区域）",
}

# The built-in examples: (label, 图1, 图2, instruction, size); files are in examples/.
EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"  # the files EXAMPLES name
EXAMPLES = [
    ("🐱→🐶 换物体 · Object swap", "cat.jpg", None, "将图中的小猫换成小狗", "auto"),
    ("🎨 Style · 风格", "coffee.jpg", None, "Turn this photo into a watercolor painting", "auto"),
    ("🪐 换背景 · Background", "astronaut.jpg", None, "把背景换成火星表面，人物保持不变", "1024*1024"),
    ("🔤 Text · 改文字", "coffee_sign.jpg", None, "Change the word “COFFEE” on the sign to “TEA”", "auto"),
    (
        "🚀 两图合成 · 图1+图2",
        "astronaut.jpg",
        "rocket.jpg",
        "让图1中的宇航员站在图2的火箭发射场前",
        "1248*832",
    ),
    (
        "☕ Two images · 图1+图2",
        "cat.jpg",
        "coffee.jpg",
        "Put the cat from 图1 on the table beside the cup in 图2",
        "auto",
    ),
    ("🌌 夜空 · Night sky", "rocket.jpg", None, "把天空改成布满星星的夜空", "auto"),
]

# The region-edit example: (label, 图1, its mask, instruction); files are in examples/.
REGION_EXAMPLE = (
    "🖌 只改一处 · One region",
    "astronaut.jpg",
    "astronaut_mask.png",
    "把航天飞机模型换成一盆绿植 / replace the shuttle model with a potted plant",
)

# --- edit chains and reordering 图1-图3 (issue 18): the page's labels, then phrases said at run time
EN.update(
    {
        "swap12": "⇄ Swap 图1 and 图2",
        "swap23": "⇄ Swap 图2 and 图3",
        "swap_apply": "Apply to the instruction",
        "swap_keep": "Keep the instruction as is",
        "open_parent": "⛓ Open the result it was made from",
        "share_steps": "Share the steps that led here too",
        "share_steps_info": "The share page then also shows each earlier step of this chain: its "
        "instruction and its before/after.",
    }
)
ZH.update(
    {
        "swap12": "⇄ 交换图1和图2",
        "swap23": "⇄ 交换图2和图3",
        "swap_apply": "应用到编辑描述",
        "swap_keep": "保持描述不变",
        "open_parent": "⛓ 打开它所基于的结果",
        "share_steps": "同时分享得到此结果的各个步骤",
        "share_steps_info": "分享页还会显示这条编辑链中之前的每一步：它的编辑描述和前后对比。",
    }
)
CHAIN_RUNTIME = {
    "made_from": ("⛓ 基于上一步的结果：{prompt}", "⛓ Made from the result of: {prompt}"),
    "swap_suggest": (
        "图片已交换。编辑描述中提到了 {names}：也要交换吗？应用后为：{preview}",
        "The images were swapped. The instruction names {names}: swap them there too? It would read: "
        "{preview}",
    ),
}


def chain_say(key: str, chinese: bool, **values: object) -> str:
    """One phrase of edit chains and reordering, in the visitor's language."""
    zh, en = CHAIN_RUNTIME[key]
    return (zh if chinese else en).format(**values)


# --- What changed, and Download as (issue 18): the words of webapp.changes and webapp.exports -------
EN.update(
    {
        "changes_show": "🔍 What changed",
        "changes_view": "What changed",
        "export": "⬇ Download as PNG, JPEG or WebP",
        "export_format": "Format",
        "export_quality": "Quality (JPEG and WebP; PNG is lossless)",
        "export_make": "Make the file",
        "export_file": "Your file: the AI-content label inside, no other metadata",
    }
)
ZH.update(
    {
        "changes_show": "🔍 改了哪里",
        "changes_view": "改了哪里",
        "export": "⬇ 下载为 PNG、JPEG 或 WebP",
        "export_format": "格式",
        "export_quality": "质量（JPEG 和 WebP；PNG 为无损）",
        "export_make": "生成文件",
        "export_file": "你的文件：含 AI 生成内容标识，不含其他元数据",
    }
)
VIEW_WORDS = {
    "changes_share": (
        "图像中 {share} 有变化（着色处；变暗处与图1相同）。",
        "{share} of the image changed (tinted; the dimmed part is as in 图1).",
    ),
    "changes_moved": (
        "图像大部分都移动了（{share} 不同）：服务方平移、缩放或重绘了整张图，因此不显示精确差异。",
        "Most of the image moved ({share} of it differs): the provider shifted, zoomed or redrew the "
        "whole picture, so no precise difference is shown.",
    ),
    "changes_shift": (" 整体约平移了 {dx}×{dy} 像素。", " The whole picture slid by about {dx}×{dy} px."),
    "changes_clean": (
        " 青色框框住涂抹的区域：框外没有任何变化。",
        " The cyan frame surrounds the painted area: nothing changed outside it.",
    ),
    "changes_outside": (
        " 青色框框住涂抹的区域；框外也有 {outside} 的图像变化了。",
        " The cyan frame surrounds the painted area; {outside} of the image outside it changed too.",
    ),
    "changes_rule": (
        "（变化指：缩到 {side} 像素并轻微模糊后，某个颜色通道相差超过 {threshold}/255；"
        "JPEG 重新编码的噪声实测最多 {noise}。）",
        " (Changed: a colour channel differs by more than {threshold} of 255 at {side} px after a light "
        "blur; JPEG re-encoding noise measured at most {noise}.)",
    ),
}
VIEW_ERRORS = {
    "changes_no_before": (
        "没有可对比的图1（它是链接，或已无法读取）",
        "There is no 图1 to compare with (it was a link, or can no longer be read).",
    ),
    "export_format": ("只能下载为 PNG、JPEG 或 WebP", "Downloads are PNG, JPEG or WebP."),
    "export_quality": ("质量必须在 {low} 到 {high} 之间", "The quality must be from {low} to {high}."),
    "export_webp_side": (
        "WebP 每边最多 {side} 像素，此结果为 {width}×{height}；请选择 PNG 或 JPEG",
        "WebP holds at most {side} px a side and this result is {width}×{height}; choose PNG or JPEG.",
    ),
}


def view_say(key: str, chinese: bool, **values: object) -> str:
    """One phrase of these views in the visitor's language."""
    zh, en = VIEW_WORDS[key]
    return (zh if chinese else en).format(**values)


def view_error_text(key: str, **values: object) -> str:
    """One error of these views in both languages: "中文 / English"."""
    zh, en = VIEW_ERRORS[key]
    return f"{zh.format(**values)} / {en.format(**values)}"


def share_words(share: float) -> str:
    """A share in words: "12 %"; "<1 %" for a little and ">99 %" for nearly all, so a change is
    never rounded away (nor a last unchanged pixel); "0 %" only for nothing."""
    if share <= 0 or share >= 1:
        return "0 %" if share <= 0 else "100 %"
    if share < 0.01 or share > 0.99:
        return "<1 %" if share < 0.01 else ">99 %"
    return f"{round(share * 100)} %"


# --- Accessible to everyone (issue 18): what a screen reader says for the images on show ---------
EN.update(
    {
        "result_alt": "The edited image",
        "changes_alt": "The edited image, what changed tinted",
    }
)
ZH.update(
    {
        "result_alt": "编辑后的图像",
        "changes_alt": "编辑后的图像，变化处已着色",
    }
)
# Variants (issue 19): the page's choice and what it costs, beside Edit.
EN.update(
    {
        "variants": "Variants",
        "variants_info": "Each variant is a separate billed call; all are sent at once.",
    }
)
ZH.update({"variants": "变体数", "variants_info": "每个变体单独计费，同时发送。"})

I18N = gr.I18n(en=EN, zh=ZH, **{"zh-CN": ZH, "zh-TW": ZH, "zh-HK": ZH})

# Words returned by handlers at run time, in the visitor's language (from Accept-Language).
RUNTIME = {
    "preparing": ("准备图片…", "Preparing images…"),
    "waiting": (
        "等待服务返回 · 已 {elapsed} 秒（通常约 {typical} 秒）",
        "Waiting for the provider · {elapsed} s (usually about {typical} s)",
    ),
    "saving": ("保存结果…", "Saving the results…"),
    "working": ("⏳ 编辑中…", "⏳ Editing…"),
    "done": ("✅ **完成** · 订单 `{order}` · {seconds} 秒", "✅ **Done** · order `{order}` · {seconds} s"),
    "results_count": (" · 共 {count} 张结果", " · {count} results"),
    "simulated": (" · *模拟结果*", " · *simulated*"),
    "region_done": (
        " · 只修改了涂抹的区域，尺寸与图1相同",
        " · only the painted area changed, at 图1's size",
    ),
    "failed": ("⚠️ 编辑失败（原因见提示消息）。", "⚠️ The edit failed (the message says why)."),
    "failed_kept": (
        "⚠️ 编辑失败（原因见提示消息）；之前的结果和记录都已保留。",
        "⚠️ The edit failed (the message says why); earlier results and history are kept.",
    ),
    "cancelled": (
        "⏹️ 已取消等待。服务方可能仍会完成并计费这次编辑；如果它完成了，结果会保存并出现在编辑记录中。",
        "⏹️ Stopped waiting. The provider may still finish (and bill) this edit; if it does, the result "
        "is saved and appears in this session's edits.",
    ),
    "late": (
        "✅ 之前取消的编辑已完成并保存 · 订单 `{order}`",
        "✅ The cancelled edit finished after all and was saved · order `{order}`",
    ),
    "link_note": ("🔗 图{n}使用高级选项中的链接", "🔗 图{n} uses the link from Advanced"),
    # variants (issue 19)
    "variants_progress": (" · 已完成 {done}/{n} 个变体", " · {done} of {n} variants in"),
    "variants_done": (" · {ok}/{n} 个变体成功", " · {ok} of {n} variants made"),
    "variants_failed": (" · {failed} 个失败（代码见其位置）", " · {failed} failed (code in its place)"),
    "variant_failed": ("✕ {code} 变体 {n} 失败", "✕ {code} variant {n} failed"),
    "variants_all_failed": ("⚠️ {n} 个变体全部失败：{why}。", "⚠️ All {n} variants failed: {why}."),
}


# Errors a visitor or an API caller reads: (Chinese, English), shown as "中文 / English". Titles are
# short labels for the toast.
ERRORS = {
    "no_image1": ("请在图1中放入图片", "Put an image in 图1 (Image 1)."),
    "slot_gap": (
        "图{n}为空，但后面的图片已设置；请按顺序放入图片",
        "图{n} (Image {n}) is empty while a later slot is set; fill the slots in order.",
    ),
    "link_scheme": (
        "图{n}的链接必须以 http:// 或 https:// 开头",
        "The 图{n} (Image {n}) link must be a public http:// or https:// URL.",
    ),
    "api_image": (
        "图{n}必须是 http(s) 链接、data:image/...;base64 URI 或用 handle_file() 上传的文件；"
        "链接请以普通字符串发送",
        "image{n} must be an http(s) link, a data:image/...;base64 URI or a file sent with handle_file(); "
        "send links as plain strings.",
    ),
    "rate_limit": (
        "编辑太频繁，请 {wait} 秒后再试",
        "Too many edits: at most {limit} per minute. Try again in {wait} s.",
    ),
    "busy": (
        "服务繁忙，正在进行的编辑已达上限，请稍后再试",
        "The server is busy: too many edits are waiting. Try again in a minute.",
    ),
    "no_result": ("还没有结果", "There is no result to continue from yet."),
    "board_none": ("请先选择至少一张结果。", "Pick at least one result first."),
    "mask_form": (
        "蒙版必须是 data:image/...;base64 URI 或用 handle_file() 上传的文件（服务器不下载链接），"
        "与图1同样大小，白色或不透明处表示要修改",
        "the mask must be a data:image/...;base64 URI or a file sent with handle_file() (this server "
        "fetches no links), the size of 图1, white or opaque where the image may change.",
    ),
    "region_size": (
        "局部编辑的结果与图1同样大小，所选的输出尺寸未使用",
        "A region edit comes back at 图1's own size; the chosen output size was not used.",
    ),
    "paint_first": (
        "请先在图1中放入图片，再涂抹要修改的区域",
        "Put an image in 图1 first, then paint the area to change.",
    ),
    "name_images": (
        "多图编辑时请用图1、图2、图3指代图片，否则结果不可预测",
        "With several images, name them 图1, 图2, 图3 in the instruction; otherwise the result is "
        "unpredictable.",
    ),
    "image_pixels": (
        "图{n}像素过多，请缩小后再上传",
        "图{n} (Image {n}) has too many pixels; make it smaller.",
    ),
    "image_unreadable": (
        "无法读取图{n}：文件为空、已损坏或不是图片",
        "图{n} (Image {n}) could not be read: the file is empty, corrupt or not an image (JPEG, PNG, "
        "BMP, TIFF, WebP or GIF).",
    ),
    "api_text": (
        "参数 {name} 必须是文本",
        "The parameter {name} must be text.",
    ),
    "gate_value": (
        "请求中第 {n} 项不是页面会发送的值（{why}）；请重新加载页面后再试",
        "Value {n} of this request is not one the page sends ({why}); reload the page and try again.",
    ),
    "editor_blobs": (
        "涂抹区域的上传被拒绝（{why}）；请重新加载页面后再试",
        "The painted region's upload was refused ({why}); reload the page and try again.",
    ),
    "file_link": (
        "本服务器不下载图片链接：请上传文件；通过 API 时请把链接作为普通字符串发送（由服务方下载）",
        "This server does not download image links: upload the file instead. Through the API, send links "
        "as plain strings (the provider downloads them).",
    ),
    "remote_file": ("本服务器不转发远程文件", "This server does not relay remote files."),
    "uploads": (
        "上传太频繁：每分钟最多 {files} 个文件、共 {size}，请 {wait} 秒后再试",
        "Too many uploads from your address: at most {files} files and {size} per minute. "
        "Try again in {wait} s.",
    ),
    "logins": (
        "登录失败次数太多，请 {wait} 秒后再试",
        "Too many failed logins from your address. Try again in {wait} s.",
    ),
    "body_size": (
        "请求太大：最多 {size}",
        "The request is too large: at most {size}. Send large images as uploaded files or links.",
    ),
    "daily_limit": (
        "本演示今日 {limit} 次编辑的额度已用完（UTC 0 点重置）；"
        "在「高级」中填入你自己的聚合数据 key 仍可编辑",
        "The demo's daily quota of {limit} edits is used up (it resets at 00:00 UTC). Your own Juhe key "
        "still works: paste it under Advanced, or pass api_key.",
    ),
}
# Variants (issue 19): a set is admitted whole or refused before anything is sent, saying what fits.
ERRORS.update(
    {
        "variants": (
            "变体数 variants 必须是 1 到 {most} 的整数",
            "variants must be a whole number from 1 to {most}.",
        ),
        "rate_limit_set": (
            "每分钟最多 {limit} 次编辑，{asked} 个变体超出限制；请减少变体数",
            "At most {limit} edits per minute: {asked} variants are more than that; choose fewer variants.",
        ),
        "rate_limit_left": (
            "本分钟只剩 {left} 次编辑，未发送任何请求；请选择不超过 {left} 个变体，或 {wait} 秒后再试",
            "Only {left} left this minute: nothing was sent. Choose {left} variants or fewer, or try "
            "again in {wait} s.",
        ),
        "daily_left": (
            "本演示今日额度只剩 {left} 次编辑，{asked} 个变体未发送；请选择不超过 {left} 个变体",
            "Only {left} left today of the demo's daily quota of {limit} edits: nothing was sent. Choose "
            "{left} variants or fewer, or paste your own Juhe key under Advanced (api_key).",
        ),
        "busy_variants": (
            "服务器同时最多进行 {most} 个编辑，请减少变体数",
            "The server is busy: it runs at most {most} edits at once; try fewer variants.",
        ),
    }
)
TITLES = {
    "error": "错误 · Error",
    "link": "链接 · Link",
    "image": "图片 · Image",
    "image1": "图1 · Image 1",
    "order": "图片顺序 · Image order",
    "rate_limit": "限流 · Rate limit",
    "busy": "繁忙 · Busy",
    "daily_limit": "今日额度 · Daily quota",
}
AUTH_MESSAGE = "输入访问密码（用户名任意） / Enter the access password (any user name)."


def error_text(key: str, **values: object) -> str:
    """One error in both languages: "中文 / English"."""
    zh, en = ERRORS[key]
    return f"{zh.format(**values)} / {en.format(**values)}"


# Words the page's own JavaScript shows (webapp/static/app.js): (Chinese, English); {n}, {min}, {max},
# {size} and {name} are filled in there.
PAGE_SCRIPT_TEXTS = {
    "cut_off": (" · 超出部分会被截断", " · the rest will be cut off"),
    "name_images": (
        " · 多图编辑请用图1、图2、图3指代图片",
        " · with several images, name them 图1, 图2, 图3",
    ),
    "link_note": ("🔗 图{n}使用高级选项中的链接", "🔗 图{n} uses the link from Advanced"),
    "size_note": (
        "宽和高必须是 {min} 到 {max} 之间的整数；修正之前不会发送编辑。",
        "Width and height must be whole numbers from {min} to {max}; nothing is sent until this is fixed.",
    ),
    "confirm_delete": (
        "删除这张结果？文件和分享链接都会删除，无法恢复。",
        "Delete this result? Its files and share link are deleted for good.",
    ),
    "tab_title": ("AI 图像编辑 · 聚合数据接口 1985", "AI Image Edit · Juhe API 1985"),
    # Gradio's own upload refusals, written in English by its page: said in Chinese too
    "too_large": ("文件超过允许的最大大小 {size}: {name}", ""),
    "bad_type": ("文件类型无效：{name}；只接受图片", ""),
}


def page_script() -> str:
    """What the page's JavaScript needs from here, as a `<script>`: `window.JUHE_LIMITS` (from juhe)
    and `window.JUHE_TEXTS` (the words above), so no figure or word is typed twice."""
    limits = {"promptChars": MAX_PROMPT_CHARS, "minSide": MIN_SIDE, "maxSide": MAX_SIDE}
    texts = {key: {"zh": zh, "en": en} for key, (zh, en) in PAGE_SCRIPT_TEXTS.items()}
    # json.dumps escapes no "<": written into a <script>, "</script>" in a text would end it early
    payload = json.dumps({"limits": limits, "texts": texts}, ensure_ascii=False).replace("<", "\\u003c")
    return f"<script>window.JUHE = {payload}; window.JUHE_LIMITS = window.JUHE.limits;</script>"


# The public `edit` endpoint's description: the API page and the MCP tool read it. Gradio keeps only
# the first line of each `Args:` entry, so each is built as one line.
API_SUMMARY = (
    "Edit one to three images with the Juhe AI image-edit API (接口 1985) as the instruction says.\n\n"
    "Each image is an http(s) link (handed to the provider, which downloads it), a data:image/...;base64 "
    "URI, or a file sent with gradio_client's handle_file(). Returns the first edited image and a record: "
    "order_id, images (links to every result), size, model, elapsed_s, simulated (true for the offline "
    "preview) and warnings. With variants above 1 the first image is the first variant made, images "
    "links every variant's results, and the record adds variants (per variant: index, order_id and "
    "images, or error with its code) and group (the set's id)."
)
API_ARGS = {
    "image1": "图1, the image to edit (required): an http(s) link, a data:image/...;base64 URI, or an "
    "uploaded file.",
    "prompt": f"The instruction in Chinese or English, at most {MAX_PROMPT_CHARS} characters (longer is cut, "
    'with a warning); with several images name them 图1, 图2, 图3, e.g. "把图1中的人放进图2的场景".',
    "image2": "图2, an optional second image, in the same forms as image1.",
    "image3": "图3, an optional third image, in the same forms as image1 (needs image2).",
    "size": 'Output size: "auto" keeps 图1\'s aspect ratio at about one megapixel; "original" gives '
    f'图1\'s exact pixel size; or "W*H" (also "WxH") with each side from {MIN_SIDE} to {MAX_SIDE}, '
    'e.g. "1024*1024".',
    "model": 'The provider\'s model name; "auto" unless your Juhe account has another model enabled.',
    "api_key": "Your own Juhe API key for this call only, never stored; without it the server's key (or "
    "the offline simulator) is used.",
    "mask": "Optional: change only part of 图1. A mask the size of 图1 (a data:image/...;base64 URI or an "
    "uploaded file, not a link), white or opaque where the image may change; every pixel away from it "
    "stays as in 图1 and the result has 图1's exact size (size must then be auto or original).",
    "variants": "How many variants to make, 1 to 4 (default 1): each is a separate billed call, all "
    "sent at once; the set is refused whole, before anything is sent, when fewer edits are left.",
}
API_RETURNS = "The first edited image (PNG) and the record described above."
API_DESCRIPTION = "\n".join(
    [API_SUMMARY, "", "Args:", *(f"    {name}: {text}" for name, text in API_ARGS.items()), "", "Returns:"]
    + [f"    {API_RETURNS}"]
)


def wants_chinese(accept_language: str | None) -> bool:
    """True when the browser prefers Chinese."""
    first = (accept_language or "").split(",")[0].strip().lower()
    return first.startswith("zh")


LANGUAGE_COOKIE = "juhe-lang"  # written by app.js: the language the page is shown in, "zh" or "en"


def chosen_language(cookie_header: str | None) -> str | None:
    """ "zh" or "en" as the page says it is shown (the `juhe-lang` cookie), else None."""
    for part in (cookie_header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == LANGUAGE_COOKIE and value in ("zh", "en"):
            return value
    return None


def request_chinese(request: object) -> bool:
    """True when this caller reads Chinese: the page's language switch (its cookie) first, so a
    presenter's choice wins over the browser's; else the browser's Accept-Language."""
    headers = getattr(request, "headers", None) or {}
    chosen = chosen_language(headers.get("cookie"))
    return chosen == "zh" if chosen else wants_chinese(headers.get("accept-language"))


def says_language(request: object) -> bool:
    """True when the caller names a language: the page's switch (its cookie) or Accept-Language, as
    every browser sends; programs (gradio_client, MCP clients) usually send neither."""
    headers = getattr(request, "headers", None) or {}
    return bool(chosen_language(headers.get("cookie")) or headers.get("accept-language"))


def say(key: str, chinese: bool, **values: object) -> str:
    """One runtime phrase in the visitor's language."""
    zh, en = RUNTIME[key]
    return (zh if chinese else en).format(**values)


# --- The page a stakeholder sees (issue 18): failures in the status line, toasts in the visitor's
# language first, what Delete and Revoke did. ---
RUNTIME.update(
    {
        "edit_failed": ("⚠️ 编辑失败：{why}。", "⚠️ The edit failed: {why}."),
        "edit_failed_kept": (
            "⚠️ 编辑失败：{why}。之前的结果和记录都已保留。",
            "⚠️ The edit failed: {why}; earlier results and history are kept.",
        ),
        "deleted": (
            "🗑 已删除这张结果：文件和分享链接都已删除。",
            "🗑 Deleted: the result's files and share link are gone.",
        ),
        "deleted_slots": (
            "你为它上传的图片也已删除，并已从表单中清除。",
            " The photo you uploaded for it went with it and is cleared from the form.",
        ),
        "revoked": ("🔗 分享链接已撤销，不再能打开。", "🔗 The share link is revoked: it no longer opens."),
        "no_link": ("这张结果没有分享链接。", "This result has no share link."),
    }
)


def visitor_order(message: str, chinese: bool, separator: str = " / ") -> str:
    """A bilingual message ("中文 / English") with the visitor's language first, both kept."""
    zh, found, en = message.partition(separator)
    return message if chinese or not found else f"{en}{separator}{zh}"


# --- A result opened again, the login throttle, the region example's loading (issue 18, friction) --
PAGE_SCRIPT_TEXTS["region_loading"] = ("正在载入图1和涂抹区域…", "Loading 图1 and the painted area…")
PAGE_SCRIPT_TEXTS["working"] = RUNTIME["working"]  # said by the run click itself (app.js)
RECORD_WORDS = {
    "prompt": ("编辑描述", "Instruction"),
    "size": ("尺寸", "Size"),
    "asked": ("请求 {size}", "asked {size}"),
    "model": ("模型", "Model"),
    "time": ("完成时间", "Made"),
    "order": ("订单", "Order"),
    "unknown": ("未知", "unknown"),
}
# The login page (Gradio's own, which loads none of the page's scripts) says how long a visitor the
# login throttle blocked must wait; {wait} counts down there.
LOGIN_WAIT = ("尝试次数太多，请等待 {wait} 秒后再试。", "Too many tries: wait {wait} s, then try again.")


def login_script(code: str) -> str:
    """The login page's `<script>`: its words (`LOGIN_WAIT`) as `window.JUHE_LOGIN`, then `code`."""
    words = json.dumps({"zh": LOGIN_WAIT[0], "en": LOGIN_WAIT[1]}, ensure_ascii=False).replace("<", "\\u003c")
    return f"<script>window.JUHE_LOGIN = {words};\n{code}</script>"


def record_say(key: str, chinese: bool, **values: object) -> str:
    """One word of a result's record panel in the visitor's language."""
    zh, en = RECORD_WORDS[key]
    return (zh if chinese else en).format(**values)


# --- Boards (issue 19): several results shared as one link to present them ------------------------
EN.update(
    {
        "board_open": "🗂 Share several as a board…",
        "board_pick": "Results to put on the board",
        "board_pick_info": "From this browser's history, in this order. The board shows them one at a "
        "time (← →, full screen) to anyone with its link, no password needed.",
        "board_make": "🔗 Share as a board",
        "board_link": "Board link",
        "board_info": "Anyone with this link sees these results, their instructions and before/after, and "
        "can download them as one zip; a result deleted or expired leaves the board.",
        "board_revoke": "Revoke board link",
    }
)
ZH.update(
    {
        "board_open": "🗂 把几张结果分享为展板…",
        "board_pick": "放到展板上的结果",
        "board_pick_info": "来自本浏览器的历史记录，按此顺序。展板逐张展示（← → 切换，可全屏），"
        "任何拿到链接的人都能打开，无需密码。",
        "board_make": "🔗 分享为展板",
        "board_link": "展板链接",
        "board_info": "任何拿到此链接的人都能看到这些结果、编辑描述和前后对比，并可打包下载为一个 zip；"
        "被删除或过期的结果会从展板上消失。",
        "board_revoke": "撤销展板链接",
    }
)
RUNTIME.update(
    {
        "board_revoked": (
            "🔗 展板链接已撤销，不再能打开。",
            "🔗 The board link is revoked: it no longer opens.",
        ),
        "board_no_link": ("没有可撤销的展板链接。", "There is no board link to revoke."),
    }
)


# --- Batch (issue 19): one instruction over up to 20 photos, each its own edit --------------------
EN.update(
    {
        "batch": "🗂 Batch · one instruction over up to 20 photos",
        "batch_info": "Each photo is 图1 of its own edit, billed as one, with the usual checks; a failure "
        "never stops the others. Drop up to 20 images (JPEG, PNG, BMP, TIFF, WebP, GIF or HEIC, each "
        "within the upload limit); zip files are not taken. Results join your history as one run.",
        "batch_files": "Photos (up to 20)",
        "batch_prompt": "Instruction for every photo",
        "batch_refs": "Also send the form's 图2 / 图3 with every photo",
        "batch_run": "▶ Run batch",
        "batch_retry": "↻ Retry failed",
        "batch_zip": "All results (zip with manifest.csv and manifest.json)",
    }
)
ZH.update(
    {
        "batch": "🗂 批量 · 一条描述处理最多 20 张照片",
        "batch_info": "每张照片都是一次单独编辑的图1，单独计费，照常检查；某张失败不影响其他照片。"
        "最多放入 20 张图片（JPEG、PNG、BMP、TIFF、WebP、GIF 或 HEIC，每张不超过上传上限）；不接受 zip 文件。"
        "结果作为一次运行加入编辑记录。",
        "batch_files": "照片（最多 20 张）",
        "batch_prompt": "对每张照片的编辑描述",
        "batch_refs": "同时把上方表单的图2、图3随每张照片发送",
        "batch_run": "▶ 开始批量编辑",
        "batch_retry": "↻ 重试失败的照片",
        "batch_zip": "全部结果（zip，含 manifest.csv 和 manifest.json）",
    }
)
RUNTIME.update(
    {
        "batch_queued": ("排队中", "queued"),
        "batch_running": ("进行中", "running"),
        "batch_done": ("完成", "done"),
        "batch_failed": ("失败", "failed"),
        "batch_photo": ("照片", "Photo"),
        "batch_status": ("状态", "Status"),
        "batch_outcome": ("订单或错误", "Order or error"),
        "batch_seconds": ("秒", "s"),
        "batch_summary": (
            "共 {total} 张 · 完成 {done} · 失败 {failed} · 进行中 {running} · 排队 {queued} · "
            "已用 {elapsed} 秒",
            "{total} photos · {done} done · {failed} failed · {running} running · {queued} queued · "
            "{elapsed} s",
        ),
        "batch_next": (
            " · 下一张 {wait} 秒后发送（每分钟最多 {limit} 次编辑）",
            " · next photo goes in {wait} s (at most {limit} edits per minute)",
        ),
        "batch_finished": ("批量完成：{done}/{total} 张成功", "Batch finished: {done} of {total} made"),
        "batch_some_failed": (
            "，{failed} 张失败，可单独重试",
            " · {failed} failed: Retry failed sends those alone",
        ),
        "batch_ready": ("已选 {n} 张照片", "{n} photos ready"),
    }
)
ERRORS.update(
    {
        "batch_none": ("请先放入要批量编辑的照片", "Drop the photos to edit first."),
        "batch_prompt": ("请写下对每张照片的编辑描述", "Write the instruction for the photos."),
        "batch_too_many": (
            "一批最多 {most} 张照片，这里有 {n} 张；未发送任何请求",
            "At most {most} photos per batch, {n} given: nothing was sent.",
        ),
        "batch_daily_left": (
            "本演示今日额度只剩 {left} 次编辑，{n} 张照片未发送；请选择不超过 {left} 张，"
            "或在「高级」中填入你自己的聚合数据 key",
            "Only {left} edits are left today of the demo's daily quota of {limit}: nothing was sent for "
            "these {n} photos. Choose {left} photos or fewer, or use your own Juhe key (Advanced, api_key).",
        ),
        "batch_list": (
            "images 必须是 1 到 {most} 个用 handle_file() 上传的文件组成的列表",
            "images must be a list of 1 to {most} files sent with handle_file().",
        ),
        "batch_file": (
            "images 的第 {n} 项不是用 handle_file() 上传的文件；/batch 不接受链接和 data URI",
            "images item {n} is not a file sent with handle_file(); /batch takes no links or data URIs.",
        ),
        "batch_removed": ("{names} 不是可用的图片，已移除", "{names}: not a usable image, removed."),
        "batch_extra": (
            "一批最多 {most} 张照片，多出的 {n} 张已移除",
            "At most {most} photos per batch: the {n} beyond that were removed.",
        ),
        "batch_no_failed": ("没有失败的照片可重试", "There is no failed photo to retry."),
        "photo_large": ("文件超过上传上限 {size}", "the file is over the upload limit of {size}"),
        "photo_format": (
            "不是本应用接受的图片格式",
            "not an image this app takes (JPEG, PNG, BMP, TIFF, WebP, GIF or HEIC)",
        ),
        "photo_pixels": ("像素过多", "too many pixels"),
    }
)
TITLES["batch"] = "批量 · Batch"
