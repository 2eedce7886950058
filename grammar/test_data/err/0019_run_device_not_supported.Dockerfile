FROM busybox

RUN --device=nvidia.com/gpu=all nvidia-smi
