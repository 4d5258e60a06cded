# Thin drivers over MicroPython's machine / esp32 modules and micropython-lib's lora package.
# Each implements one interface of segelfw.hal; board.build() wires them from a board file.
