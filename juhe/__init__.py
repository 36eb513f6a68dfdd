"""A client of the Juhe AI image-edit API (接口 1985, "AI图像编辑").

from juhe import ImageEditClient
with ImageEditClient() as client:               # JUHE_API_KEY from the environment or .env
    result = client.edit("把图中的小猫换成小狗", ["cat.jpg"])
    paths = client.download(result, "outputs")  # links expire after 24 hours

    result = client.edit("把天空换成晚霞", ["photo.jpg"], mask="mask.png")  # only the painted part changes
    result = client.edit("转成油画风格", ["IMG_0001.HEIC"], size="original")  # at 图1's exact size
"""

from ._batch import MAX_VARIANTS, Batch, BatchItem, BatchSink, edit_variants, manifest, zip_results
from ._client import AsyncImageEditClient, ImageEditClient
from ._config import DEFAULT_API_URL, Settings, dotenv_file
from ._download import OTHER_EXTENSION, RESULT_EXTENSIONS
from ._exceptions import (
    ERROR_CODES,
    AuthenticationError,
    ConfigError,
    ConnectError,
    ContentRejectedError,
    DownloadError,
    GenerationFailedError,
    HTTPStatusError,
    InvalidRequestError,
    JuheError,
    MalformedResponseError,
    RateLimitError,
    ReadTimeoutError,
    ServiceUnavailableError,
    TransportError,
    error_for_code,
)
from ._formats import MAX_INPUT_PIXELS, read_orientation, sniff_format, sniff_heif, upright_turn
from ._heic import heif_to_jpeg
from ._models import EditResult
from ._provenance import read_provenance
from ._request import (
    MAX_IMAGES,
    MAX_MODEL_CHARS,
    MAX_PROMPT_CHARS,
    MAX_SIDE,
    MIN_SIDE,
    ORIGINAL_SIZE,
    parse_size,
)
from ._urls import is_http_url
from ._version import __version__

__all__ = [
    "DEFAULT_API_URL",
    "ERROR_CODES",
    "MAX_IMAGES",
    "MAX_INPUT_PIXELS",
    "MAX_MODEL_CHARS",
    "MAX_PROMPT_CHARS",
    "MAX_SIDE",
    "MAX_VARIANTS",
    "MIN_SIDE",
    "ORIGINAL_SIZE",
    "OTHER_EXTENSION",
    "RESULT_EXTENSIONS",
    "AsyncImageEditClient",
    "AuthenticationError",
    "Batch",
    "BatchItem",
    "BatchSink",
    "ConfigError",
    "ConnectError",
    "ContentRejectedError",
    "DownloadError",
    "EditResult",
    "GenerationFailedError",
    "HTTPStatusError",
    "ImageEditClient",
    "InvalidRequestError",
    "JuheError",
    "MalformedResponseError",
    "RateLimitError",
    "ReadTimeoutError",
    "ServiceUnavailableError",
    "Settings",
    "TransportError",
    "__version__",
    "dotenv_file",
    "edit_variants",
    "error_for_code",
    "heif_to_jpeg",
    "is_http_url",
    "manifest",
    "parse_size",
    "read_orientation",
    "read_provenance",
    "sniff_format",
    "sniff_heif",
    "upright_turn",
    "zip_results",
]
