from specdetect.cli import main

main()
